// The demo shop's own script (its cart and header), as any shop has one. Tracking is footprint.js's
// job: this file only calls footprint.purchase() at checkout; product pages need no script at all.
"use strict";
const PRODUCTS = {
  "vay-nu-he": { name: "Váy nữ phong cách hè", price: 459000, icon: "👗" },
  "ao-so-mi-linen": { name: "Áo sơ mi linen", price: 389000, icon: "👔" },
  "tui-coi": { name: "Túi cói đi biển", price: 259000, icon: "👜" },
};
const cart = {
  items: () => JSON.parse(localStorage.getItem("demo_cart") || "[]"),
  save: (items) => localStorage.setItem("demo_cart", JSON.stringify(items)),
  add(productId) {
    this.save([...this.items(), productId]);
    showCount();
  },
};
const money = (value) => value.toLocaleString("vi-VN") + " ₫";

function showCount() {
  const count = document.getElementById("cart-count");
  if (count) count.textContent = String(cart.items().length);
}

function say(text) {
  const status = document.getElementById("status");
  if (status) status.textContent = text;
}

document.addEventListener("click", (event) => {
  // The add-to-cart buttons carry data-footprint-add-to-cart: footprint.js reports add_to_cart itself.
  const add = event.target.closest("[data-footprint-add-to-cart]");
  if (add) {
    cart.add(add.closest("[data-footprint-product]").dataset.footprintProduct);
    say("Đã thêm vào giỏ.");
  }
  if (event.target.closest("#push-opt-in")) {
    // On the click itself: browsers ask for notification permission only on a user gesture.
    footprint.push.subscribe().then(
      (subscription) => say(subscription ? "Đã bật thông báo." : "Bạn chưa cho phép thông báo."),
      (error) => say("Không bật được thông báo: " + error.message),
    );
  }
});

function renderCart() {
  const list = document.getElementById("cart-items");
  if (!list) return;
  const items = cart.items();
  list.replaceChildren(...items.map((id) => {
    const row = document.createElement("li");
    row.textContent = `${PRODUCTS[id].name} · ${money(PRODUCTS[id].price)}`;
    return row;
  }));
  const total = items.reduce((sum, id) => sum + PRODUCTS[id].price, 0);
  document.getElementById("cart-total").textContent = money(total);
  const checkout = document.getElementById("checkout");
  if (checkout) checkout.hidden = items.length === 0;
}

function checkout(event) {
  event.preventDefault();
  const items = cart.items();
  if (!items.length) return;
  const orderId = "DH-" + Date.now().toString(36).toUpperCase();
  footprint.purchase({
    order_id: orderId,
    revenue: items.reduce((sum, id) => sum + PRODUCTS[id].price, 0),
    currency: "VND",
    products: items.map((id) => ({ product_id: id, name: PRODUCTS[id].name, price: PRODUCTS[id].price, quantity: 1 })),
  });
  cart.save([]);
  renderCart();
  say(`Cảm ơn bạn! Đơn hàng ${orderId} đã được ghi nhận.`);
}

showCount();
renderCart();
document.getElementById("order")?.addEventListener("submit", checkout);
