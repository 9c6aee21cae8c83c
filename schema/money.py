"""Money as GraphQL shows it: an exact decimal, as a string, and its currency.

A JSON number is a double in most clients: `1250.10` read into JavaScript is already
not 1250.10, and sums drift from there. So amounts travel as strings in both
directions, and an amount sent as a float is refused rather than guessed at.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any, NewType

import strawberry
from graphql import FloatValueNode, GraphQLError, IntValueNode, StringValueNode, ValueNode
from strawberry.types.scalar import ScalarDefinition

from gateway import model
from gateway.errors import BadUserInput

__all__ = ["SCALARS", "Amount", "Money", "MoneyInput"]

_NOT_A_FLOAT = 'An amount is a string of digits, as "1250.00", never a float.'
_NOT_AN_AMOUNT = 'An amount is a string of digits, as "1250.00".'
_AMOUNT = re.compile(r"-?[0-9]+(\.[0-9]+)?")
r"""ASCII digits only: Python's `Decimal` and `\d` take any script's (`"１０"`), which no
provider's API does."""
_PLACES = 6


def _parsed(value: Any) -> Decimal:
    """Text of digits (an integer is exact too); a float has already lost the amount. A
    refusal is GraphQL's own error, as a built-in scalar's is: the caller's input."""
    if isinstance(value, float):
        raise GraphQLError(_NOT_A_FLOAT)
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise GraphQLError(_NOT_AN_AMOUNT)
    text = str(value)
    if not _AMOUNT.fullmatch(text):
        raise GraphQLError(f"'{text[:40]}' is not an amount: digits and a point, as \"1250.00\".")
    try:
        amount = Decimal(text)
    except InvalidOperation:
        raise GraphQLError(f"'{text[:40]}' is not an amount.") from None
    if len(text.partition(".")[2]) > _PLACES:
        raise GraphQLError(f"'{text[:40]}' has more than {_PLACES} decimal places.")
    if model.significant_digits(amount) > model.AMOUNT_DIGITS:
        raise GraphQLError(
            f"'{text[:40]}' has more than {model.AMOUNT_DIGITS} significant digits: no provider "
            "takes it exactly."
        )
    return amount


def _literal(node: ValueNode, _variables: dict[str, Any] | None = None) -> Decimal:
    if isinstance(node, StringValueNode | IntValueNode):
        return _parsed(node.value if isinstance(node, StringValueNode) else int(node.value))
    raise GraphQLError(_NOT_A_FLOAT if isinstance(node, FloatValueNode) else _NOT_AN_AMOUNT)


Amount = NewType("Amount", Decimal)
SCALARS: dict[object, ScalarDefinition] = {
    Amount: strawberry.scalar(
        name="Decimal",
        description='An exact decimal number, as a string: "1250.00". Never a float. Taken '
        f"with up to {model.AMOUNT_DIGITS} significant digits and 6 places.",
        serialize=str,
        parse_value=_parsed,
        parse_literal=_literal,
    )
}
"""The schema's own scalars, for `StrawberryConfig.scalar_map`."""


@strawberry.type(description="An amount of money in a currency.")
class Money:
    amount: Amount = strawberry.field(
        description='Exact, as a string, to at least the currency\'s minor units: "1250.00".'
    )
    currency: str = strawberry.field(description="ISO 4217 code: CAD, USD, EUR...")


@strawberry.input(description="An amount of money: the amount as a string, never a float.")
class MoneyInput:
    amount: Amount
    currency: str = strawberry.field(description="ISO 4217 code: CAD, USD, EUR...")

    def value(self, field: str) -> model.Money:
        """The model's `Money`; `field` names the input field in a refusal."""
        code = model.currency_code(self.currency)
        if code is None:
            raise BadUserInput(
                f"`{field}.currency` is not an ISO 4217 code (as CAD, USD, EUR).", field=field
            )
        return model.Money(self.amount, code)
