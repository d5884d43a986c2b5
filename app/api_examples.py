"""One worked example per operation, taken from a real run of the service.

The contract test validates every example against the schema it illustrates, so they stay true.
"""

from __future__ import annotations

from typing import Any

from app.doctor import CHECKS

PARAMETER_EXAMPLES: dict[str, Any] = {
    "order_id": "42",
    "customer_id": "7",
    "operation_id": "3",
    "key_id": "2",
    "product_id": "632910392",
    "status": "pending,held",
    "external_id": "820982911946154508",
    "name": "#1042",
    "created_from": "2026-11-01T00:00:00Z",
    "created_to": "2026-12-01T00:00:00Z",
    "date_from": "2026-11-01T00:00:00Z",
    "date_to": "2026-12-01T00:00:00Z",
    "cursor": "eyJpZCI6NDJ9",
    "limit": 50,
    "sort": "created_at",
    "tz": "Europe/Berlin",
    "from": "2026-11-01",
    "to": "2026-11-30",
    "days": 30,
    "actor": "Ana",
    "action": "order.approved",
    "If-Match": '"3"',
    "Idempotency-Key": "5f1c2a9e-8d7b-4c3a-9e21-7b6d4f0a1c55",
    "Last-Event-ID": "9f1c0d0c5b6e4f7a8d2e3b4c5a6f7e8d",
    "week": "2026-W48",
    "orders_above": 3,
}


def _example(summary: str, value: Any) -> dict[str, Any]:
    return {"summary": summary, "value": value}


DRAFT_PROGRAM: dict[str, Any] = {
    "base_rate": "5",
    "rounding": "half_up",
    "minimum_eligible_amount": "10.00",
    "maximum_cashback_per_order": "50.00",
    "include_shipping": False,
    "include_tax": False,
    "subtract_discounts": True,
    "exclude_test_orders": True,
    "exclude_credit_payments": True,
    "b2b_rate": None,
    "rules": [],
    "tiers": [],
    "campaigns": [],
    "credit_expiry_days": 90,
    "reminder_days_before": [7, 1],
}

SAMPLE_ORDER: dict[str, Any] = {
    "id": 820982911946154508,
    "name": "#1042",
    "currency": "USD",
    "financial_status": "paid",
    "total_price": "124.70",
    "customer": {"id": 115310627314723954, "email": "maria.lopez@example.com"},
    "line_items": [
        {
            "id": 466157049,
            "title": "Trail Running Shoe - 42 / Black",
            "product_id": 632910392,
            "variant_id": 39072856,
            "sku": "TRS-42-BLK",
            "quantity": 2,
            "price": "40.00",
            "gift_card": False,
            "total_discount": "8.00",
        }
    ],
}

REQUESTS: dict[str, dict[str, Any]] = {
    "receiveShopifyWebhook": {"orders_paid": _example("`orders/paid`", SAMPLE_ORDER)},
    "approveOrder": {
        "calculated": _example("Approve the calculated amount", {}),
        "adjusted": _example(
            "Approve an adjusted amount", {"amount": "4.00", "note": "Goodwill, agreed by phone"}
        ),
    },
    "rejectOrder": {"reason": _example("Reject", {"reason": "Test order placed by staff"})},
    "holdOrder": {"reason": _example("Hold", {"reason": "Shipping address mismatch"})},
    "processOrder": {
        "ask": _example("Ask for the amount first", {}),
        "confirm": _example("Confirm and credit", {"expected_amount": "4.38"}),
    },
    "bulkApproveOrders": {
        "approve": _example("Approve three orders", {"ids": ["41", "42", "43"], "note": None})
    },
    "bulkRejectOrders": {
        "reject": _example("Reject two orders", {"ids": ["44", "45"], "reason": "Duplicate"})
    },
    "replaceProgram": {
        "program": _example("5% with limits, expiring after 90 days", DRAFT_PROGRAM)
    },
    "redeemCredit": {
        "redeem": _example(
            "Spend 5.00 at the till", {"amount": "5.00", "reference": "pos-receipt-20261201-0042"}
        )
    },
    "previewCashback": {
        "preview": _example(
            "Now and under a 10% draft",
            {"order": SAMPLE_ORDER, "program": DRAFT_PROGRAM | {"base_rate": "10"}},
        )
    },
    "simulateProgram": {
        "simulate": _example(
            "November at 10%",
            {
                "program": DRAFT_PROGRAM | {"base_rate": "10"},
                "date_from": "2026-11-01",
                "date_to": "2026-11-30",
            },
        )
    },
    "replaceCatalogProduct": {
        "product": _example(
            "A shoe in two collections",
            {
                "title": "Trail Running Shoe",
                "product_type": "Shoes",
                "vendor": "Acme",
                "tags": ["running", "sale"],
                "collections": ["summer", "outdoor"],
            },
        )
    },
    "updateShopSettings": {
        "manual": _example(
            "Review every order, at most 50.00 each",
            {"processing_mode": "manual", "approval_ceiling": "50.00"},
        ),
        "automatic": _example(
            "Back to automatic, approving what waits",
            {"processing_mode": "automatic", "pending_orders": "process"},
        ),
        "practices": _example(
            "Verified accounts, a review call on working days at 09:00, an audit on Mondays",
            {
                "hold_rules": {"unverified_customer": True, "cashback_above": "25.00"},
                "alert_webhook_url": "https://hooks.acme.example/cashback",
                "review_schedule": {"at": "09:00", "weekdays": ["mon", "tue", "wed", "thu", "fri"]},
                "weekly_audit": {
                    "weekday": "mon",
                    "at": "08:00",
                    "frequent_customer_orders_above": 3,
                },
            },
        ),
    },
    "createApiKey": {"reviewer": _example("A reviewer", {"name": "Ana", "role": "reviewer"})},
    "createShop": {
        "shop": _example(
            "A US shop",
            {
                "domain": "acme.myshopify.com",
                "currency": "USD",
                "processing_mode": "manual",
                "timezone": "America/New_York",
            },
        )
    },
}

RESPONSES: dict[str, Any] = {
    "getHealth": {"status": "ok"},
    "getReadiness": {"status": "ok", "database": "ok", "redis": "ok", "migrations": "ok"},
    "createShop": {
        "id": "1",
        "domain": "contract.myshopify.com",
        "currency": "USD",
        "processing_mode": "automatic",
        "api_key": "cbk_Q2ttZ3u9Xw1rLhE8yV0pKc4sN7aB5dF6gH2jJ3kL4m",
        "webhook_secret": "whsec_3n9Vb2Lq7Xr4Tz1Kw8Yp5Ds0Fh6Gj2Mc",
    },
    "updateShopSettings": {
        "processing_mode": "manual",
        "currency": "USD",
        "timezone": "UTC",
        "award_delay_days": 0,
        "approval_ceiling": "50.00",
        "hold_rules": {
            "cashback_above": None,
            "order_total_above": None,
            "fraud_prone": {"tags": [], "collections": [], "product_types": []},
            "first_order": False,
            "b2b_orders": False,
            "customer_daily_orders_above": None,
            "customer_daily_cashback_above": None,
            "unverified_customer": True,
        },
        "push_store_credit": False,
        "platform_access_token_set": False,
        "platform_api_version": "2026-10",
        "platform_api_base_url": None,
        "notify_customers": True,
        "notification_webhook_url": None,
        "alert_webhook_url": None,
        "review_deadline_hours": None,
        "review_schedule": {"at": "09:00", "weekdays": ["mon", "tue", "wed", "thu", "fri"]},
        "weekly_audit": {"weekday": "mon", "at": "08:00", "frequent_customer_orders_above": 3},
        "operation": None,
        "outbound_webhook_secret": None,
    },
    "getShopSettings": {
        "processing_mode": "manual",
        "currency": "USD",
        "timezone": "UTC",
        "award_delay_days": 0,
        "approval_ceiling": "50.00",
        "hold_rules": {
            "cashback_above": None,
            "order_total_above": None,
            "fraud_prone": {"tags": [], "collections": [], "product_types": []},
            "first_order": False,
            "b2b_orders": False,
            "customer_daily_orders_above": None,
            "customer_daily_cashback_above": None,
            "unverified_customer": True,
        },
        "push_store_credit": False,
        "platform_access_token_set": False,
        "platform_api_version": "2026-10",
        "platform_api_base_url": None,
        "notify_customers": True,
        "notification_webhook_url": None,
        "alert_webhook_url": None,
        "review_deadline_hours": None,
        "review_schedule": {"at": "09:00", "weekdays": ["mon", "tue", "wed", "thu", "fri"]},
        "weekly_audit": {"weekday": "mon", "at": "08:00", "frequent_customer_orders_above": 3},
    },
    "receiveShopifyWebhook": {"result": "accepted"},
    "listOrders": {
        "items": [
            {
                "id": "1",
                "external_id": "9100000000000000002",
                "name": "#1042",
                "status": "pending",
                "status_reason": None,
                "currency": "USD",
                "total_amount": "124.70",
                "cashback_amount": "4.38",
                "credited_amount": "0.00",
                "reversed_amount": "0.00",
                "customer_id": "1",
                "hold_reasons": [],
                "review_started_at": "2026-11-25T22:42:12.468894Z",
                "customer_history": {
                    "orders": 5,
                    "credited_amount": "0.00",
                    "reversed_amount": "0.00",
                    "verified_email": True,
                    "account_state": "enabled",
                    "account_problem": None,
                },
                "version": 2,
                "created_at": "2026-11-25T22:42:11.846984Z",
                "updated_at": "2026-11-25T22:42:11.846984Z",
                "processed_at": None,
            }
        ],
        "next_cursor": "eyJpZCI6Mn0",
    },
    "countOrdersByStatus": {
        "counts": {
            "received": 0,
            "awaiting_payment": 0,
            "awaiting_customer": 1,
            "not_eligible": 0,
            "pending": 5,
            "held": 0,
            "scheduled": 0,
            "processed": 0,
            "rejected": 0,
            "partially_reversed": 0,
            "reversed": 0,
            "failed": 0,
        }
    },
    "getOrder": {
        "id": "1",
        "external_id": "9100000000000000002",
        "name": "#1042",
        "status": "pending",
        "status_reason": None,
        "currency": "USD",
        "total_amount": "124.70",
        "cashback_amount": "4.38",
        "credited_amount": "0.00",
        "reversed_amount": "0.00",
        "customer_id": "1",
        "hold_reasons": [],
        "review_started_at": "2026-11-25T22:42:12.468894Z",
        "customer_history": {
            "orders": 5,
            "credited_amount": "0.00",
            "reversed_amount": "0.00",
            "verified_email": True,
            "account_state": "enabled",
            "account_problem": None,
        },
        "version": 2,
        "created_at": "2026-11-25T22:42:11.846984Z",
        "updated_at": "2026-11-25T22:42:11.846984Z",
        "processed_at": None,
        "financial_status": "paid",
        "test": False,
        "eligible_amount": "87.50",
        "program_version": 1,
        "last_error": None,
        "review_note": None,
        "decided_at": None,
        "award_amount": None,
        "award_at": None,
        "allowed_actions": ["approve", "reject", "hold"],
        "payments": {
            "status": "none",
            "currency": "USD",
            "credit_gateways": [],
            "paid_with_credit_amount": "0.00",
            "gift_card_amount": None,
            "store_credit_amount": None,
            "read_at": None,
        },
        "lines": [
            {
                "external_id": "466157049",
                "title": "Trail Running Shoe - 42 / Black",
                "product_id": "632910392",
                "variant_id": "39072856",
                "sku": "TRS-42-BLK",
                "quantity": 2,
                "unit_price": "40.00",
                "discount_amount": "8.00",
                "gift_card": False,
                "eligible_amount": "72.00",
                "rate": "5",
                "cashback_amount": "3.60",
                "rate_source": "base",
                "campaigns": [],
                "reason": None,
            }
        ],
        "history": [
            {
                "action": "order.received",
                "from_status": None,
                "to_status": "received",
                "reason": None,
                "actor": "system",
                "at": "2026-11-25T22:42:11.846984Z",
            }
        ],
    },
    "approveOrder": {
        "id": "1",
        "external_id": "9100000000000000002",
        "name": "#1042",
        "status": "processed",
        "status_reason": None,
        "currency": "USD",
        "total_amount": "124.70",
        "cashback_amount": "4.38",
        "credited_amount": "4.00",
        "reversed_amount": "0.00",
        "customer_id": "1",
        "hold_reasons": [],
        "review_started_at": "2026-11-25T22:42:12.468894Z",
        "customer_history": {
            "orders": 5,
            "credited_amount": "4.00",
            "reversed_amount": "0.00",
            "verified_email": True,
            "account_state": "enabled",
            "account_problem": None,
        },
        "version": 3,
        "created_at": "2026-11-25T22:42:11.846984Z",
        "updated_at": "2026-11-25T22:42:13.426137Z",
        "processed_at": "2026-11-25T22:42:13.512332Z",
        "financial_status": "paid",
        "test": False,
        "eligible_amount": "87.50",
        "program_version": 1,
        "last_error": None,
        "review_note": "goodwill",
        "decided_at": "2026-11-25T22:42:13.512332Z",
        "award_amount": "4.00",
        "award_at": None,
        "allowed_actions": [],
        "payments": {
            "status": "none",
            "currency": "USD",
            "credit_gateways": [],
            "paid_with_credit_amount": "0.00",
            "gift_card_amount": None,
            "store_credit_amount": None,
            "read_at": None,
        },
        "lines": [
            {
                "external_id": "466157049",
                "title": "Trail Running Shoe - 42 / Black",
                "product_id": "632910392",
                "variant_id": "39072856",
                "sku": "TRS-42-BLK",
                "quantity": 2,
                "unit_price": "40.00",
                "discount_amount": "8.00",
                "gift_card": False,
                "eligible_amount": "72.00",
                "rate": "5",
                "cashback_amount": "3.60",
                "rate_source": "base",
                "campaigns": [],
                "reason": None,
            }
        ],
        "history": [
            {
                "action": "order.received",
                "from_status": None,
                "to_status": "received",
                "reason": None,
                "actor": "system",
                "at": "2026-11-25T22:42:11.846984Z",
            }
        ],
    },
    "rejectOrder": {
        "id": "2",
        "external_id": "9100000000000000003",
        "name": "#1042",
        "status": "rejected",
        "status_reason": "test order",
        "currency": "USD",
        "total_amount": "124.70",
        "cashback_amount": "4.38",
        "credited_amount": "0.00",
        "reversed_amount": "0.00",
        "customer_id": "1",
        "hold_reasons": [],
        "review_started_at": "2026-11-25T22:42:12.662146Z",
        "customer_history": {
            "orders": 5,
            "credited_amount": "4.00",
            "reversed_amount": "0.00",
            "verified_email": True,
            "account_state": "enabled",
            "account_problem": None,
        },
        "version": 3,
        "created_at": "2026-11-25T22:42:12.077473Z",
        "updated_at": "2026-11-25T22:42:13.689301Z",
        "processed_at": None,
        "financial_status": "paid",
        "test": False,
        "eligible_amount": "87.50",
        "program_version": 1,
        "last_error": None,
        "review_note": None,
        "decided_at": "2026-11-25T22:42:13.701220Z",
        "award_amount": None,
        "award_at": None,
        "allowed_actions": [],
        "payments": {
            "status": "none",
            "currency": "USD",
            "credit_gateways": [],
            "paid_with_credit_amount": "0.00",
            "gift_card_amount": None,
            "store_credit_amount": None,
            "read_at": None,
        },
        "lines": [
            {
                "external_id": "466157049",
                "title": "Trail Running Shoe - 42 / Black",
                "product_id": "632910392",
                "variant_id": "39072856",
                "sku": "TRS-42-BLK",
                "quantity": 2,
                "unit_price": "40.00",
                "discount_amount": "8.00",
                "gift_card": False,
                "eligible_amount": "72.00",
                "rate": "5",
                "cashback_amount": "3.60",
                "rate_source": "base",
                "campaigns": [],
                "reason": None,
            }
        ],
        "history": [
            {
                "action": "order.received",
                "from_status": None,
                "to_status": "received",
                "reason": None,
                "actor": "system",
                "at": "2026-11-25T22:42:12.077473Z",
            }
        ],
    },
    "holdOrder": {
        "id": "3",
        "external_id": "9100000000000000004",
        "name": "#1042",
        "status": "held",
        "status_reason": "address mismatch",
        "currency": "USD",
        "total_amount": "124.70",
        "cashback_amount": "4.38",
        "credited_amount": "0.00",
        "reversed_amount": "0.00",
        "customer_id": "1",
        "hold_reasons": ["address mismatch"],
        "review_started_at": "2026-11-25T22:42:12.356264Z",
        "customer_history": {
            "orders": 5,
            "credited_amount": "4.00",
            "reversed_amount": "0.00",
            "verified_email": True,
            "account_state": "enabled",
            "account_problem": None,
        },
        "version": 3,
        "created_at": "2026-11-25T22:42:12.083085Z",
        "updated_at": "2026-11-25T22:42:13.831857Z",
        "processed_at": None,
        "financial_status": "paid",
        "test": False,
        "eligible_amount": "87.50",
        "program_version": 1,
        "last_error": None,
        "review_note": None,
        "decided_at": None,
        "award_amount": None,
        "award_at": None,
        "allowed_actions": ["approve", "reject", "release"],
        "payments": {
            "status": "none",
            "currency": "USD",
            "credit_gateways": [],
            "paid_with_credit_amount": "0.00",
            "gift_card_amount": None,
            "store_credit_amount": None,
            "read_at": None,
        },
        "lines": [
            {
                "external_id": "466157049",
                "title": "Trail Running Shoe - 42 / Black",
                "product_id": "632910392",
                "variant_id": "39072856",
                "sku": "TRS-42-BLK",
                "quantity": 2,
                "unit_price": "40.00",
                "discount_amount": "8.00",
                "gift_card": False,
                "eligible_amount": "72.00",
                "rate": "5",
                "cashback_amount": "3.60",
                "rate_source": "base",
                "campaigns": [],
                "reason": None,
            }
        ],
        "history": [
            {
                "action": "order.received",
                "from_status": None,
                "to_status": "received",
                "reason": None,
                "actor": "system",
                "at": "2026-11-25T22:42:12.083085Z",
            }
        ],
    },
    "releaseOrder": {
        "id": "3",
        "external_id": "9100000000000000004",
        "name": "#1042",
        "status": "pending",
        "status_reason": None,
        "currency": "USD",
        "total_amount": "124.70",
        "cashback_amount": "4.38",
        "credited_amount": "0.00",
        "reversed_amount": "0.00",
        "customer_id": "1",
        "hold_reasons": [],
        "review_started_at": "2026-11-25T22:42:12.356264Z",
        "customer_history": {
            "orders": 5,
            "credited_amount": "4.00",
            "reversed_amount": "0.00",
            "verified_email": True,
            "account_state": "enabled",
            "account_problem": None,
        },
        "version": 4,
        "created_at": "2026-11-25T22:42:12.083085Z",
        "updated_at": "2026-11-25T22:42:13.942975Z",
        "processed_at": None,
        "financial_status": "paid",
        "test": False,
        "eligible_amount": "87.50",
        "program_version": 1,
        "last_error": None,
        "review_note": None,
        "decided_at": None,
        "award_amount": None,
        "award_at": None,
        "allowed_actions": ["approve", "reject", "hold"],
        "payments": {
            "status": "none",
            "currency": "USD",
            "credit_gateways": [],
            "paid_with_credit_amount": "0.00",
            "gift_card_amount": None,
            "store_credit_amount": None,
            "read_at": None,
        },
        "lines": [
            {
                "external_id": "466157049",
                "title": "Trail Running Shoe - 42 / Black",
                "product_id": "632910392",
                "variant_id": "39072856",
                "sku": "TRS-42-BLK",
                "quantity": 2,
                "unit_price": "40.00",
                "discount_amount": "8.00",
                "gift_card": False,
                "eligible_amount": "72.00",
                "rate": "5",
                "cashback_amount": "3.60",
                "rate_source": "base",
                "campaigns": [],
                "reason": None,
            }
        ],
        "history": [
            {
                "action": "order.received",
                "from_status": None,
                "to_status": "received",
                "reason": None,
                "actor": "system",
                "at": "2026-11-25T22:42:12.083085Z",
            }
        ],
    },
    "processOrder": {
        "processed": False,
        "calculated_amount": "4.38",
        "currency": "USD",
        "order": {
            "id": "6",
            "external_id": "9100000000000000001",
            "name": "#1042",
            "status": "awaiting_customer",
            "status_reason": None,
            "currency": "USD",
            "total_amount": "124.70",
            "cashback_amount": "4.38",
            "credited_amount": "0.00",
            "reversed_amount": "0.00",
            "customer_id": None,
            "hold_reasons": [],
            "review_started_at": None,
            "customer_history": None,
            "version": 2,
            "created_at": "2026-11-25T22:42:12.111632Z",
            "updated_at": "2026-11-25T22:42:12.111632Z",
            "processed_at": None,
            "financial_status": "paid",
            "test": False,
            "eligible_amount": "87.50",
            "program_version": 1,
            "last_error": None,
            "review_note": None,
            "decided_at": None,
            "award_amount": None,
            "award_at": None,
            "allowed_actions": ["reject", "hold", "process"],
            "payments": {
                "status": "none",
                "currency": "USD",
                "credit_gateways": [],
                "paid_with_credit_amount": "0.00",
                "gift_card_amount": None,
                "store_credit_amount": None,
                "read_at": None,
            },
            "lines": [
                {
                    "external_id": "466157049",
                    "title": "Trail Running Shoe - 42 / Black",
                    "product_id": "632910392",
                    "variant_id": "39072856",
                    "sku": "TRS-42-BLK",
                    "quantity": 2,
                    "unit_price": "40.00",
                    "discount_amount": "8.00",
                    "gift_card": False,
                    "eligible_amount": "72.00",
                    "rate": "5",
                    "cashback_amount": "3.60",
                    "rate_source": "base",
                    "campaigns": [],
                    "reason": None,
                }
            ],
            "history": [
                {
                    "action": "order.received",
                    "from_status": None,
                    "to_status": "received",
                    "reason": None,
                    "actor": "system",
                    "at": "2026-11-25T22:42:12.111632Z",
                }
            ],
        },
    },
    "bulkApproveOrders": {
        "results": [
            {"id": "3", "ok": True, "status": "processed", "code": None, "detail": None},
            {"id": "5", "ok": True, "status": "processed", "code": None, "detail": None},
        ]
    },
    "bulkRejectOrders": {
        "results": [{"id": "4", "ok": True, "status": "rejected", "code": None, "detail": None}]
    },
    "redeemCredit": {
        "id": "1",
        "customer_id": "1",
        "reference": "pos-receipt-20261201-0042",
        "amount": "5.00",
        "currency": "USD",
        "balance": "7.76",
        "spent": [
            {"credit_entry_id": "3", "amount": "4.38"},
            {"credit_entry_id": "6", "amount": "0.62"},
        ],
        "created_at": "2026-12-01T10:02:44.917215Z",
    },
    "getCustomer": {
        "id": "1",
        "external_id": "115310627314723954",
        "email": "maria.lopez@example.com",
        "first_name": "Maria",
        "last_name": "Lopez",
        "balance": "12.76",
        "currency": "USD",
        "expiring_soon": {"amount": "4.38", "expires_at": "2027-02-24T04:59:59Z"},
        "created_at": "2026-11-25T22:42:12.083085Z",
    },
    "listCustomerLedger": {
        "items": [
            {
                "id": "3",
                "kind": "credit",
                "amount": "4.38",
                "currency": "USD",
                "order_id": "5",
                "reverses_entry_id": None,
                "expires_at": "2027-02-24T04:59:59Z",
                "redemption_id": None,
                "description": "Cashback for order #1042",
                "created_at": "2026-11-25T22:42:14.119455Z",
            }
        ],
        "next_cursor": "eyJpZCI6M30",
    },
    "getProgram": {
        "base_rate": "5",
        "rounding": "half_up",
        "minimum_eligible_amount": None,
        "maximum_cashback_per_order": None,
        "include_shipping": False,
        "include_tax": False,
        "subtract_discounts": True,
        "exclude_test_orders": True,
        "exclude_credit_payments": True,
        "b2b_rate": None,
        "rules": [],
        "tiers": [],
        "campaigns": [],
        "credit_expiry_days": None,
        "reminder_days_before": [],
        "version": 1,
        "created_at": "2026-11-25T22:42:11.281758Z",
    },
    "replaceProgram": {
        "base_rate": "6",
        "rounding": "half_up",
        "minimum_eligible_amount": None,
        "maximum_cashback_per_order": None,
        "include_shipping": False,
        "include_tax": False,
        "subtract_discounts": True,
        "exclude_test_orders": True,
        "exclude_credit_payments": True,
        "b2b_rate": None,
        "rules": [],
        "tiers": [],
        "campaigns": [],
        "credit_expiry_days": 90,
        "reminder_days_before": [7, 1],
        "version": 2,
        "created_at": "2026-11-25T22:42:14.441637Z",
    },
    "previewCashback": {
        "current": {
            "program_version": 2,
            "currency": "USD",
            "eligible_amount": "87.50",
            "cashback_amount": "5.25",
            "capped": False,
            "reasons": [],
            "lines": [
                {
                    "external_id": "466157049",
                    "eligible_amount": "72.00",
                    "rate": "6",
                    "rate_source": "base",
                    "campaigns": [],
                    "cashback_amount": "4.32",
                    "reason": None,
                }
            ],
        },
        "draft": {
            "program_version": None,
            "currency": "USD",
            "eligible_amount": "87.50",
            "cashback_amount": "8.75",
            "capped": False,
            "reasons": [],
            "lines": [
                {
                    "external_id": "466157049",
                    "eligible_amount": "72.00",
                    "rate": "10",
                    "rate_source": "base",
                    "campaigns": [],
                    "cashback_amount": "7.20",
                    "reason": None,
                }
            ],
        },
    },
    "simulateProgram": {
        "orders": 6,
        "currency": "USD",
        "current": {"orders_earning": 6, "cashback_amount": "31.50"},
        "draft": {"orders_earning": 6, "cashback_amount": "31.50"},
        "difference": "0.00",
    },
    "getDashboardMetrics": {
        "timezone": "UTC",
        "currency": "USD",
        "processed_today": 3,
        "cashback_issued_today": "12.76",
        "reversed_today": "0.00",
        "expired_today": "1.20",
        "expiring_next_30_days": "4.38",
        "cashback_issued_total": "12.76",
        "pending_count": 0,
        "held_count": 0,
        "failed_count": 0,
        "awaiting_customer_count": 1,
        "scheduled_amount": "0.00",
        "approval_time_median_seconds": 1.604,
        "approval_time_p90_seconds": 1.772,
        "processing_latency_p50_ms": 2629.213,
        "processing_latency_p95_ms": 2643.787,
        "sync_failures": 0,
        "oldest_pending_seconds": None,
    },
    "getDailyMetrics": {
        "timezone": "Europe/Berlin",
        "currency": "USD",
        "days": [
            {
                "day": "2026-01-01",
                "orders": 0,
                "processed": 0,
                "rejected": 0,
                "cashback_issued": "0.00",
                "reversed": "0.00",
                "expired": "0.00",
                "approval_time_median_seconds": None,
            }
        ],
    },
    "getTopCustomers": {
        "currency": "USD",
        "items": [
            {
                "customer_id": "1",
                "external_id": "115310627314723954",
                "orders": 3,
                "cashback_issued": "12.76",
            }
        ],
    },
    "replaceCatalogProduct": {
        "title": "IPod Nano",
        "product_type": "Music",
        "vendor": None,
        "tags": ["sale"],
        "collections": ["summer"],
        "id": "632910392",
        "updated_at": "2026-11-25T22:42:14.840897Z",
    },
    "getCatalogProduct": {
        "title": "IPod Nano",
        "product_type": "Music",
        "vendor": None,
        "tags": ["sale"],
        "collections": ["summer"],
        "id": "632910392",
        "updated_at": "2026-11-25T22:42:14.840897Z",
    },
    "getMe": {
        "shop": "acme.myshopify.com",
        "actor": "Ana",
        "role": "reviewer",
        "currency": "USD",
        "timezone": "America/New_York",
        "shopify": {
            "installed_at": "2026-11-20T09:00:00Z",
            "scopes": ["read_orders", "read_customers", "write_store_credit_account_transactions"],
            "token_state": "usable",
            "needs_reauth": False,
            "reauth_reason": None,
            "reauth_url": "https://cashback.example.com/shopify/install?shop=acme.myshopify.com",
        },
    },
    "getOperation": {
        "id": "1",
        "kind": "approve_pending",
        "status": "running",
        "total": 1,
        "succeeded": 0,
        "failed": 0,
        "created_at": "2026-11-25T22:42:15.492350Z",
        "finished_at": None,
    },
    "createApiKey": {
        "id": "3",
        "name": "Ana",
        "role": "reviewer",
        "prefix": "cbk_R7vwP1nq",
        "created_at": "2026-11-25T22:42:15.607178Z",
        "revoked_at": None,
        "api_key": "cbk_R7vwP1nq8Zt3yXe0bUa5sC9dF2gH4jK6mN8pQ1rS3t",
    },
    "listApiKeys": {
        "items": [
            {
                "id": "1",
                "name": "owner",
                "role": "admin",
                "prefix": "cbk_Q2ttZ3u9",
                "created_at": "2026-11-25T22:42:11.281758Z",
                "revoked_at": None,
            }
        ],
        "next_cursor": "eyJpZCI6MX0",
    },
    "revokeApiKey": {
        "id": "3",
        "name": "Ana",
        "role": "reviewer",
        "prefix": "cbk_R7vwP1nq",
        "created_at": "2026-11-25T22:42:15.607178Z",
        "revoked_at": "2026-11-25T22:42:15.709038Z",
    },
    "getWeeklyAudit": {
        "week": "2026-W48",
        "timezone": "America/New_York",
        "starts_at": "2026-11-23T05:00:00Z",
        "ends_at": "2026-11-30T05:00:00Z",
        "currency": "USD",
        "orders_credited": 5,
        "cashback_issued": "26.14",
        "cashback_reversed": "1.80",
        "approvals": 5,
        "adjusted_approvals_count": 1,
        "adjusted_approvals": [
            {
                "order_id": "2",
                "order_name": "#1043",
                "actor": "Ana",
                "at": "2026-11-24T15:02:41.118204Z",
                "calculated_amount": "4.38",
                "approved_amount": "3.00",
                "currency": "USD",
                "note": "damaged box",
            }
        ],
        "rejections": 3,
        "rejection_reasons": [
            {"reason": "fraud suspected", "count": 2, "by_reviewers": 2},
            {"reason": "order cancelled", "count": 1, "by_reviewers": 0},
        ],
        "largest_credits": [
            {
                "ledger_entry_id": "9",
                "order_id": "7",
                "order_name": "#1048",
                "customer_id": "2",
                "amount": "10.00",
                "currency": "USD",
                "at": "2026-11-25T14:11:09.402117Z",
            }
        ],
        "frequent_customer_orders_above": 2,
        "frequent_customers_count": 1,
        "frequent_customers": [
            {
                "customer_id": "1",
                "external_id": "115310627314723954",
                "email": "maria.lopez@example.com",
                "orders": 3,
                "credited_amount": "11.76",
                "currency": "USD",
            }
        ],
        "doctor": {
            "ok": True,
            "checked_at": "2026-11-30T13:00:31.220114Z",
            "checks": [{"name": name, "ok": True, "problems": 0} for name in CHECKS],
            "findings": [],
        },
        "generated_at": "2026-11-30T13:00:31.231562Z",
    },
    "listAuditEvents": {
        "items": [
            {
                "id": "14",
                "at": "2026-11-25T22:42:13.426137Z",
                "actor": "owner",
                "action": "order.approved",
                "subject_type": "order",
                "subject_id": "1",
                "before": {"status": "pending"},
                "after": {"amount": "4.00", "status": "processed"},
                "reason": None,
            }
        ],
        "next_cursor": None,
    },
}

EXAMPLES: dict[str, dict[str, Any]] = {
    operation_id: {
        key: value
        for key, value in (
            ("request", REQUESTS.get(operation_id)),
            ("response", RESPONSES.get(operation_id)),
        )
        if value is not None
    }
    for operation_id in REQUESTS.keys() | RESPONSES.keys()
}

# Answers that are not JSON: the audit exports (the live stream's example is one event, with
# its schema in app/events).
TEXT_EXAMPLES: dict[str, dict[str, str]] = {
    "listAuditEvents": {
        "text/csv": (
            "id,at,actor,action,subject_type,subject_id,reason,before,after\r\n"
            "14,2026-11-25T22:42:13.426137+00:00,Ana,order.approved,order,42,,"
            '"{""status"":""pending""}","{""amount"":""4.00"",""status"":""processed""}"\r\n'
        )
    },
    "getWeeklyAudit": {
        "text/csv": (
            "section,name,value,currency,order_id,customer_id,actor,at,detail\r\n"
            "week,week,2026-W48,,,,,,2026-11-23T05:00:00+00:00 to 2026-11-30T05:00:00+00:00 "
            "(America/New_York)\r\n"
            "summary,orders_credited,5,,,,,,\r\n"
            "summary,cashback_issued,26.14,USD,,,,,\r\n"
            "adjusted_approval,#1043,3.00,USD,2,,Ana,2026-11-24T15:02:41.118204+00:00,"
            "calculated 4.38; damaged box\r\n"
        )
    },
}
