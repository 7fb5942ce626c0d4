/* footprint-ui.js: the onsite renderer. footprint.js loads it the first time a message is due, so
   pages that never show one never download it. Content goes in as text (DOM APIs, no HTML). */
((w, d) => {
  "use strict";
  const P = "footprint_";
  const el = (tag, attributes, ...children) => {
    const node = d.createElement(tag);
    for (const [name, value] of Object.entries(attributes))
      if (name[0] == "_") node.addEventListener(name.slice(1), value);
      else if (value != null && value !== false) node.setAttribute(name, value === true ? "" : value);
    node.append(...children.filter((child) => child));
    return node;
  };
  const control = ({ name, type, required, options = [] }) => {
    const common = { name, required, id: P + name };
    if (type == "textarea") return el("textarea", { ...common, rows: 3 });
    if (type == "select")
      return el("select", common, el("option", { value: "" }, ""), ...options.map((option) => el("option", {}, option)));
    return el("input", { ...common, type, value: type == "checkbox" && "true",
      autocomplete: { full_name: "name", phone: "tel", email: "email" }[name], pattern: type == "tel" && "\\+?[\\d .]{8,20}" });
  };
  const field = (item) => item.type == "checkbox"
    ? el("label", { class: "fp-check" }, control(item), item.label)
    : el("label", { for: P + item.name }, item.label, control(item));
  // A checkbox answers true or false; an empty text answer is left out.
  const answers = (form, fields) => Object.fromEntries(fields
    .map(({ name, type }) => [name, type == "checkbox" ? form.elements[name].checked : form.elements[name].value.trim()])
    .filter(([, value]) => value !== ""));

  // Shows one message; `report(action, fields)` hears "shown", then "dismissed", "submitted" or "clicked".
  const show = (message, options, report) => {
    const content = message.content, form = message.channel == "onsite_form", back = d.activeElement;
    const close = (action, fields) => {
      root.remove();
      if (back && back.focus) back.focus();
      report(action, fields);
    };
    const box = el("div", { class: "fp-box fp-" + (form ? "form" : "push"), role: "dialog", "aria-modal": form && "true",
      "aria-labelledby": P + "title" },
    content.image && el("img", { src: content.image, alt: "" }),
    el("h2", { id: P + "title" }, content.title || ""),
    content.body && el("p", {}, content.body),
    content.offer_code && el("p", { class: "fp-offer" }, content.offer_code));
    if (form) box.append(el("form", { _submit: (event) => {
      event.preventDefault();
      close("submitted", answers(event.target, content.fields));
    } }, ...content.fields.map(field),
    content.consent_text && el("p", { class: "fp-consent" }, content.consent_text),
    el("button", {}, content.submit_label || "OK")));
    else if (content.cta) box.append(el("a", { class: "fp-cta", href: content.url || "#", _click: (event) => {
      if (content.url == "#web-push") event.preventDefault();
      close("clicked");
    } }, content.cta));
    // Last in the box, so focus goes to the first field.
    box.append(el("button", { type: "button", class: "fp-close", "aria-label": options.closeLabel || "Đóng",
      _click: () => close("dismissed") }, "×"));
    const root = form ? el("div", { class: "fp-overlay" }, box) : box;
    root.onkeydown = (event) => event.key == "Escape" && close("dismissed");
    if (!d.getElementById(P + "css")) d.head.prepend(el("style", { id: P + "css", nonce: options.nonce }, CSS));
    d.body.append(root);
    box.querySelector("input,textarea,select,button").focus();
    report("shown");
  };
  // Low specificity (one class): a site's own stylesheet overrides any of it.
  const CSS = `.fp-overlay{position:fixed;inset:0;background:#0007;display:grid;place-items:center;z-index:2147483000}
.fp-box{position:relative;box-sizing:border-box;width:min(360px,92vw);max-height:90vh;overflow:auto;padding:20px;
border-radius:12px;background:#fff;color:#111;font:15px/1.4 system-ui;z-index:2147483000}
.fp-push{position:fixed;right:16px;bottom:16px;box-shadow:0 2px 20px #0005}
.fp-box h2{margin:0 28px 8px 0;font-size:18px}.fp-box label{display:block;margin:8px 0}
.fp-box :is(img,input,textarea,select){display:block;width:100%;box-sizing:border-box;padding:8px;margin-top:4px;font:inherit}
.fp-box .fp-check{display:flex;gap:8px;align-items:center}.fp-box .fp-check input{width:auto;margin:0}
.fp-box :is(.fp-cta,form button){display:inline-block;padding:10px 18px;border:0;border-radius:8px;background:#c2410c;
color:#fff;text-decoration:none;font:inherit}.fp-close{position:absolute;top:4px;right:8px;border:0;background:none;
color:inherit;font-size:24px;line-height:1;padding:2px 6px;background:#fffc;border-radius:50%}.fp-consent{font-size:12px;color:#555}
.fp-offer{display:inline-block;padding:4px 10px;border:1px dashed #c2410c;font-weight:600;letter-spacing:1px}`;

  w.footprint && w.footprint.ui && w.footprint.ui(show);
})(window, document);
