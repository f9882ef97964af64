#!/usr/bin/env python3
"""Drive a Touchpoint server with a real Python tracking library.

Usage: send_events.py segment|rudder HOST WRITE_KEY PREFIX

Sends an anonymous page-view, an identify (userId + anonymousId + email +
phone + a Tmall buyer id in context.externalIds) and an Order Completed, then
sends all of them again with the same messageIds (a forced retry, which must
add nothing). Exits non-zero on any delivery error.
"""
import sys

lib, host, write_key, p = sys.argv[1:5]
if lib == "segment":
    from segment.analytics.client import Client
else:
    from rudderstack.analytics.client import Client

errors = []


def on_error(e, batch):
    errors.append(repr(e))


def one_pass():
    c = Client(write_key=write_key, host=host, on_error=on_error, max_retries=3, upload_size=10)
    c.track(anonymous_id=p + "-anon", event="Product Viewed",
            properties={"product_id": "sku-1", "price": 19.99}, message_id=p + "-m1")
    c.identify(user_id=p + "-user", anonymous_id=p + "-anon",
               traits={"email": p + "@Example.com", "phone": "13800000001", "name": "Py Client"},
               context={"externalIds": [{"id": p + "-tb", "type": "tmall_buyer_id",
                                         "collection": "users", "encoding": "none"}]},
               message_id=p + "-m2")
    c.track(user_id=p + "-user", event="Order Completed", message_id=p + "-m3",
            properties={"order_id": p + "-order", "total": 49.98, "currency": "CNY",
                        "products": [{"sku": "sku-1", "name": "Sneaker", "price": 19.99, "quantity": 2,
                                      "category": "shoes", "brand": "Acme"},
                                     {"product_id": "sku-2", "price": 10, "quantity": 1}]})
    c.flush()
    c.join()


one_pass()
one_pass()
if errors:
    print("delivery errors:", errors, file=sys.stderr)
    sys.exit(1)
print(lib + ": sent")
