"""The small HTML pages of the public email links, in Vietnamese and English.

The confirmation page never unsubscribes by itself: mail scanners and link previews GET every link
of a message, so only the button's POST (or a mail client's RFC 8058 one-click POST) does.
"""

from __future__ import annotations

import html

_PAGE = """<!doctype html>
<html lang="vi">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>{title}</title>
<style>
body{{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#222;
max-width:32rem;margin:4rem auto;padding:0 1rem}}
h1{{font-size:1.4rem}} p.en{{color:#555}}
button{{font-size:1rem;padding:.6rem 1.2rem;border:0;border-radius:.4rem;background:#c0392b;color:#fff;cursor:pointer}}
</style>
</head>
<body>
{content}
</body>
</html>
"""


def confirmation_page(action: str) -> str:
    """The page a visitor sees after following an unsubscribe link: one button that POSTs."""
    content = (
        "<h1>Hủy đăng ký email</h1>\n"
        '<p lang="vi">Bạn sẽ không nhận email tiếp thị từ chúng tôi nữa. Email giao dịch (như xác nhận đơn hàng)'
        " vẫn được gửi.</p>\n"
        '<p class="en" lang="en">You will no longer receive marketing emails from us. Transactional emails'
        " (such as order confirmations) are still sent.</p>\n"
        f'<form method="post" action="{html.escape(action)}">\n'
        '<input type="hidden" name="confirm" value="page">\n'
        '<button type="submit">Hủy đăng ký · Unsubscribe</button>\n'
        "</form>"
    )
    return _PAGE.format(title="Hủy đăng ký · Unsubscribe", content=content)


def unsubscribed_page() -> str:
    content = (
        "<h1>Đã hủy đăng ký</h1>\n"
        '<p lang="vi">Bạn đã hủy đăng ký thành công và sẽ không nhận email tiếp thị nữa.</p>\n'
        '<p class="en" lang="en">You have been unsubscribed and will receive no more marketing emails.</p>'
    )
    return _PAGE.format(title="Đã hủy đăng ký · Unsubscribed", content=content)


def invalid_link_page() -> str:
    content = (
        "<h1>Liên kết không hợp lệ</h1>\n"
        '<p lang="vi">Liên kết này không đầy đủ hoặc đã bị thay đổi. Hãy mở lại liên kết trong email.</p>\n'
        '<p class="en" lang="en">This link is incomplete or has been altered. Open the link from the email'
        " again.</p>"
    )
    return _PAGE.format(title="Liên kết không hợp lệ · Invalid link", content=content)
