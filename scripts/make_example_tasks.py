"""Regenerates examples/*/tasks.yaml from each example's seed data (run by hand; output is committed).

Tasks are instantiated from a few hand-written chains per domain (query -> change -> confirm),
grounded in real rows, so every gold call succeeds on the template database.
"""

from __future__ import annotations

import random
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent / "examples"


def sg(
    description: str,
    tool: str,
    args: dict[str, Any],
    facts: list[str] | None = None,
    then: list[tuple[str, dict[str, Any]]] | None = None,
    refused: bool = False,
) -> dict[str, Any]:
    """A sub-goal: one call, or several (`then`) voiced one after another; `refused`: a request the
    rules do not allow, which the assistant must decline (its call fails, nothing is written)."""
    first = {"tool": tool, "args": args, **({"expect": "refused"} if refused else {})}
    requests = [first] + [{"tool": t, "args": a} for t, a in then or []]
    return {"description": description, "requests": requests, "facts": facts or []}


def retail(seed: dict[str, list[dict[str, Any]]], rng: random.Random) -> Iterator[dict[str, Any]]:
    customers = {c["customer_id"]: c for c in seed["customers"]}
    orders = seed["orders"]
    items: dict[int, list[dict[str, Any]]] = {}
    for it in seed["order_items"]:
        items.setdefault(it["order_id"], []).append(it)
    pending = [o for o in orders if o["status"] == "pending"]
    delivered = [o for o in orders if o["status"] == "delivered"]
    streets = ["Linden Street", "Quarry Road", "Chestnut Avenue", "Mill Lane", "Station Road"]
    reasons = ["damaged", "wrong item", "no longer needed"]
    categories = ["kitchen", "garden", "office", "outdoor"]
    products = seed["products"]

    def who(o: dict[str, Any]) -> str:
        c = customers[o["customer_id"]]
        return f"You are {c['name']} ({c['email']})."

    def readdress(o: dict[str, Any]) -> dict[str, Any]:
        addr = f"{rng.randint(10, 98)} {rng.choice(streets)}, {rng.choice(['Springfield', 'Riverton', 'Lakeside'])}"
        return {
            "context": who(o),
            "goal": f"You want your pending order {o['order_id']} delivered to {addr} instead, and to know "
            "what is in it and what it will cost.",
            "subgoals": [
                sg(
                    f"Identify yourself and check the status of order {o['order_id']}.",
                    "find_customer_by_email",
                    {"email": customers[o["customer_id"]]["email"]},
                    ["status"],
                    then=[("get_order", {"order_id": o["order_id"]})],
                ),
                sg(
                    f"Have order {o['order_id']} shipped to {addr}.",
                    "update_shipping_address",
                    {"order_id": o["order_id"], "shipping_address": addr},
                    ["shipping_address"],
                ),
                sg(
                    f"Find out which items order {o['order_id']} contains and whether the first one is in stock.",
                    "list_order_items",
                    {"order_id": o["order_id"]},
                    ["product_name", "stock"],
                    then=[("get_product", {"product_id": items[o["order_id"]][0]["product_id"]})],
                ),
            ],
        }

    def account(o: dict[str, Any]) -> dict[str, Any]:
        c = customers[o["customer_id"]]
        subgoals = [
            sg(
                "Find your account using your email address.",
                "find_customer_by_email",
                {"email": c["email"]},
                ["customer_id"],
            ),
            sg(
                "Get the list of your orders.",
                "list_customer_orders",
                {"customer_id": "${1.customer_id}"},
                ["order_id"],
            ),
            sg(
                f"Check the status and total of order {o['order_id']}.",
                "get_order",
                {"order_id": o["order_id"]},
                ["status", "total"],
            ),
        ]
        goal = f"You want an overview of your orders and the details of order {o['order_id']}"
        if o["status"] == "pending":
            subgoals.append(
                sg(f"Cancel order {o['order_id']}.", "cancel_order", {"order_id": o["order_id"]}, ["status"])
            )
            goal += ", which you then want cancelled"
        else:
            subgoals.append(
                sg(
                    f"Find out what was in order {o['order_id']}.",
                    "list_order_items",
                    {"order_id": o["order_id"]},
                    ["product_name"],
                )
            )
        return {"context": who(o), "goal": goal + ".", "subgoals": subgoals}

    def quantity(o: dict[str, Any]) -> dict[str, Any]:
        it = items[o["order_id"]][0]
        q = it["quantity"] + rng.randint(1, 3)
        return {
            "context": who(o),
            "goal": f"You want {q} units of product {it['product_id']} in pending order {o['order_id']} and "
            "the new order total.",
            "subgoals": [
                sg(
                    f"Check order {o['order_id']} and review its items.",
                    "get_order",
                    {"order_id": o["order_id"]},
                    ["status", "quantity"],
                    then=[("list_order_items", {"order_id": o["order_id"]})],
                ),
                sg(
                    f"Change product {it['product_id']} in order {o['order_id']} to {q} units.",
                    "update_item_quantity",
                    {"order_id": o["order_id"], "product_id": it["product_id"], "quantity": q},
                    ["quantity"],
                ),
                sg(
                    f"Confirm the new total of order {o['order_id']}.",
                    "get_order",
                    {"order_id": o["order_id"]},
                    ["total"],
                ),
            ],
        }

    def refund(o: dict[str, Any]) -> dict[str, Any]:
        reason = rng.choice(reasons)
        return {
            "context": who(o),
            "goal": f"Your delivered order {o['order_id']} has to go back ({reason}); you want a return opened "
            "and to know where it stands.",
            "subgoals": [
                sg(
                    "Find your account and see your orders.",
                    "find_customer_by_email",
                    {"email": customers[o["customer_id"]]["email"]},
                    ["customer_id", "order_id"],
                    then=[("list_customer_orders", {"customer_id": "${1.customer_id}"})],
                ),
                sg(
                    f"Check that order {o['order_id']} was delivered.",
                    "get_order",
                    {"order_id": o["order_id"]},
                    ["status"],
                ),
                sg(
                    f"Open a return for order {o['order_id']} (reason: {reason}).",
                    "create_return",
                    {"order_id": o["order_id"], "reason": reason},
                    ["return_id"],
                ),
                sg(
                    "Check the status of the new return.",
                    "get_return",
                    {"return_id": "${3.return_id}"},
                    ["status"],
                ),
            ],
        }

    def phone(o: dict[str, Any]) -> dict[str, Any]:
        c = customers[o["customer_id"]]
        new = f"555-{rng.randint(2000, 9899)}"
        return {
            "context": who(o),
            "goal": f"You changed your phone number to {new} and want your account updated.",
            "subgoals": [
                sg(
                    "Find your account using your email address.",
                    "find_customer_by_email",
                    {"email": c["email"]},
                    ["customer_id"],
                ),
                sg(
                    f"Change your phone number to {new}.",
                    "update_customer_phone",
                    {"customer_id": "${1.customer_id}", "phone": new},
                    ["phone"],
                ),
                sg(
                    "Check the details now on file.",
                    "get_customer",
                    {"customer_id": "${1.customer_id}"},
                    ["phone", "tier"],
                ),
                sg(
                    "See which orders are on the account.",
                    "list_customer_orders",
                    {"customer_id": "${1.customer_id}"},
                    ["order_id"],
                ),
            ],
        }

    def shopping(o: dict[str, Any]) -> dict[str, Any]:
        have = {it["product_id"] for it in items[o["order_id"]]}
        cat = rng.choice(categories)
        p = rng.choice([p for p in products if p["category"] == cat and p["product_id"] not in have])
        q = rng.randint(1, 3)
        return {
            "context": who(o),
            "goal": f"You want to add {q} x product {p['product_id']} from the {cat} range to pending order "
            f"{o['order_id']}, after checking its price, and know the new total.",
            "subgoals": [
                sg(f"Browse the {cat} products.", "search_products", {"category": cat}, ["name"]),
                sg(
                    f"Check price and stock of product {p['product_id']}.",
                    "get_product",
                    {"product_id": p["product_id"]},
                    ["price", "stock"],
                ),
                sg(
                    f"Add {q} of product {p['product_id']} to order {o['order_id']}.",
                    "add_order_item",
                    {"order_id": o["order_id"], "product_id": p["product_id"], "quantity": q},
                    ["unit_price"],
                ),
                sg(
                    f"Confirm the new total of order {o['order_id']} and its full contents.",
                    "get_order",
                    {"order_id": o["order_id"]},
                    ["total", "quantity"],
                    then=[("list_order_items", {"order_id": o["order_id"]})],
                ),
            ],
        }

    def too_late(o: dict[str, Any]) -> dict[str, Any]:
        reason = rng.choice(reasons)
        oid = o["order_id"]
        fallback = (
            sg(
                f"Open a return for order {oid} instead (reason: {reason}).",
                "create_return",
                {"order_id": oid, "reason": reason},
                ["return_id"],
            )
            if o["status"] == "delivered"
            else sg(f"See what else is on order {oid}.", "list_order_items", {"order_id": oid}, ["quantity"])
        )
        return {
            "context": who(o),
            "goal": f"You want to cancel order {oid}, which is already {o['status']}; if that is not possible, "
            + (
                f"you want to send it back instead ({reason})."
                if o["status"] == "delivered"
                else "you want to know what is in it."
            ),
            "subgoals": [
                sg(f"Check the status of order {oid}.", "get_order", {"order_id": oid}, ["status"]),
                sg(
                    f"Ask to cancel order {oid} (it is {o['status']}: expect to be told it cannot be).",
                    "cancel_order",
                    {"order_id": oid},
                    refused=True,
                ),
                fallback,
            ],
        }

    plans: list[tuple[Callable[[dict[str, Any]], dict[str, Any]], list[dict[str, Any]]]] = [
        (readdress, pending),
        (account, orders[::2]),
        (quantity, pending),
        (refund, delivered),
        (phone, orders[1::3]),
        (shopping, pending),
        (too_late, [o for o in orders if o["status"] in ("delivered", "shipped")][::-1]),
    ]
    for make, pool in plans:
        for o in pool[:7]:
            yield make(o)


def telecom(seed: dict[str, list[dict[str, Any]]], rng: random.Random) -> Iterator[dict[str, Any]]:
    accounts = {a["account_id"]: a for a in seed["accounts"]}
    plans = seed["plans"]
    device_of = {d["line_id"]: d for d in seed["devices"]}
    active = [ln for ln in seed["lines"] if ln["status"] == "active"]
    suspended = [ln for ln in seed["lines"] if ln["status"] == "suspended"]
    due = [b for b in seed["bills"] if b["status"] == "due"]

    def who(account_id: int) -> str:
        a = accounts[account_id]
        return f"You are {a['holder_name']} ({a['email']})."

    def identify(account_id: int, then: str) -> dict[str, Any]:
        return sg(
            "Identify your account and see its lines.",
            "find_account_by_email",
            {"email": accounts[account_id]["email"]},
            ["account_id"],
            then=[(then, {"account_id": "${1.account_id}"})],
        )

    def plan_change(line: dict[str, Any]) -> dict[str, Any]:
        new = rng.choice([p for p in plans if p["plan_id"] != line["plan_id"]])
        num = line["phone_number"]
        return {
            "context": who(line["account_id"]),
            "goal": f"You want line {num} moved to the {new['plan_id']} plan after comparing it with your "
            "current plan.",
            "subgoals": [
                identify(line["account_id"], "list_account_lines"),
                sg(f"Find out which plan line {num} is on.", "get_line", {"phone_number": num}, ["plan_name"]),
                sg(
                    f"Check the price of plan {new['plan_id']}.",
                    "get_plan",
                    {"plan_id": new["plan_id"]},
                    ["monthly_fee", "data_gb"],
                ),
                sg(
                    f"Switch line {num} to {new['plan_id']} and check the line afterwards.",
                    "change_line_plan",
                    {"phone_number": num, "plan_id": new["plan_id"]},
                    ["plan_name"],
                    then=[("get_line", {"phone_number": num})],
                ),
            ],
        }

    def pay(bill: dict[str, Any]) -> dict[str, Any]:
        return {
            "context": who(bill["account_id"]),
            "goal": f"You want to pay your outstanding bill for {bill['period']} and know your balance after.",
            "subgoals": [
                sg(
                    "Identify your account and see your bills.",
                    "find_account_by_email",
                    {"email": accounts[bill["account_id"]]["email"]},
                    ["account_id", "balance"],
                    then=[("list_bills", {"account_id": "${1.account_id}"})],
                ),
                sg(f"Check bill {bill['bill_id']}.", "get_bill", {"bill_id": bill["bill_id"]}, ["amount"]),
                sg(f"Pay bill {bill['bill_id']}.", "pay_bill", {"bill_id": bill["bill_id"]}, ["status"]),
                sg(
                    "Check the account balance after the payment.",
                    "get_account",
                    {"account_id": "${1.account_id}"},
                    ["balance"],
                ),
            ],
        }

    def lost(line: dict[str, Any]) -> dict[str, Any]:
        num = line["phone_number"]
        device = device_of[line["line_id"]]
        subgoals = [
            sg(f"Check line {num}.", "get_line", {"phone_number": num}, ["status"]),
            sg(f"Suspend line {num} because the phone is lost.", "suspend_line", {"phone_number": num}, ["status"]),
            sg(
                f"Find out which device is registered on {num} and whether it is insured.",
                "get_device",
                {"phone_number": num},
                ["model", "insured"],
            ),
        ]
        if device["insured"] == "no":
            subgoals.append(
                sg("Insure the device.", "add_device_insurance", {"device_id": device["device_id"]}, ["insured"])
            )
        return {
            "context": who(line["account_id"]),
            "goal": f"You lost the phone for line {num}: you want the line suspended and to know about cover.",
            "subgoals": subgoals,
        }

    def roaming(line: dict[str, Any]) -> dict[str, Any]:
        num = line["phone_number"]
        want = "off" if line["roaming"] == "on" else "on"
        return {
            "context": who(line["account_id"]),
            "goal": f"You are travelling and want roaming {want} on {num}, and to know your data allowance.",
            "subgoals": [
                sg(f"Check line {num}.", "get_line", {"phone_number": num}, ["roaming"]),
                sg(
                    f"Turn roaming {want} for {num}.",
                    "set_roaming",
                    {"phone_number": num, "roaming": want},
                    ["roaming"],
                ),
                sg("Find out the data allowance of your plan.", "get_plan", {"plan_id": line["plan_id"]}, ["data_gb"]),
            ],
        }

    def reactivate(line: dict[str, Any]) -> dict[str, Any]:
        num = line["phone_number"]
        return {
            "context": who(line["account_id"]),
            "goal": f"You found your phone and want line {num} working again.",
            "subgoals": [
                identify(line["account_id"], "list_account_lines"),
                sg(f"Reactivate line {num}.", "reactivate_line", {"phone_number": num}, ["status"]),
                sg(
                    f"Check line {num} and its device.",
                    "get_line",
                    {"phone_number": num},
                    ["plan_name", "model"],
                    then=[("get_device", {"phone_number": num})],
                ),
            ],
        }

    def paid_already(bill: dict[str, Any]) -> dict[str, Any]:
        return {
            "context": who(bill["account_id"]),
            "goal": f"You think your bill for {bill['period']} is still open and want to pay it, then know your "
            "balance.",
            "subgoals": [
                sg(f"Check bill {bill['bill_id']}.", "get_bill", {"bill_id": bill["bill_id"]}, ["status"]),
                sg(
                    f"Ask to pay bill {bill['bill_id']} (it is already paid: expect to be told it cannot be).",
                    "pay_bill",
                    {"bill_id": bill["bill_id"]},
                    refused=True,
                ),
                sg(
                    "Check the account balance.",
                    "get_account",
                    {"account_id": bill["account_id"]},
                    ["balance"],
                ),
            ],
        }

    paid = [b for b in seed["bills"] if b["status"] == "paid"]
    plans_for: list[tuple[Callable[[dict[str, Any]], dict[str, Any]], list[dict[str, Any]]]] = [
        (plan_change, active),
        (pay, due),
        (lost, active[1:]),
        (roaming, active[2:]),
        (reactivate, suspended),
        (paid_already, paid[::3]),
    ]
    for make, pool in plans_for:
        for item in pool[:8]:
            yield make(item)


def main() -> None:
    makers = {"retail": retail, "telecom": telecom}
    for name in sys.argv[1:] or list(makers):
        folder = ROOT / name
        seed = yaml.safe_load((folder / "seed.yaml").read_text())
        rng = random.Random(2026)
        tasks = []
        for i, task in enumerate(makers[name](seed, rng), start=1):
            tasks.append({"id": f"{name}-{i:03d}", **task})
        header = f"# Generated by scripts/make_example_tasks.py from seed.yaml; {len(tasks)} tasks.\n"
        (folder / "tasks.yaml").write_text(header + yaml.safe_dump(tasks, sort_keys=False, width=110))
        print(name, len(tasks))


if __name__ == "__main__":
    main()
