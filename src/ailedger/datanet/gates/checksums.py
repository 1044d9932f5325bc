"""Check digits that tell a real card number or IBAN from a random run of digits.

Why: a pattern alone flags order numbers, invoice ids and ISBN-like runs; the check digit is what
the issuer put there on purpose, and only one in ten (Luhn) or ninety-seven (IBAN) random strings of
the right shape passes it. The IIN prefixes and IBAN lengths narrow it further.
"""

from __future__ import annotations

# IBAN lengths per country (ISO 13616 registry, the most used countries); others must be 15-34.
IBAN_LENGTHS: dict[str, int] = {
    "AD": 24, "AE": 23, "AT": 20, "BA": 20, "BE": 16, "BG": 22, "BH": 22, "BR": 29, "CH": 21, "CY": 28,
    "CZ": 24, "DE": 22, "DK": 18, "EE": 20, "ES": 24, "FI": 18, "FO": 18, "FR": 27, "GB": 22, "GI": 23,
    "GL": 18, "GR": 27, "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IS": 26, "IT": 27, "KW": 30, "KZ": 20,
    "LB": 28, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "MC": 27, "ME": 22, "MK": 19, "MT": 31, "MU": 30,
    "NL": 18, "NO": 15, "PK": 24, "PL": 28, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "SA": 24, "SE": 24,
    "SI": 19, "SK": 24, "SM": 27, "TN": 24, "TR": 26, "UA": 29,
}


def luhn_valid(digits: str) -> bool:
    """The Luhn (mod 10) check used by every payment card number."""
    if not digits.isdigit() or len(digits) < 2:
        return False
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def luhn_check_digit(partial: str) -> str:
    """The digit that makes `partial + digit` pass Luhn (for generating test and demo numbers)."""
    for d in "0123456789":
        if luhn_valid(partial + d):
            return d
    raise AssertionError("unreachable: one of ten digits always completes a Luhn number")


def card_prefix_ok(digits: str) -> bool:
    """Issuer prefixes of the major networks: Visa 4, Mastercard 51-55 and 2221-2720, Amex 34/37,
    Diners/JCB 30-39, Discover/UnionPay/Maestro 5x and 6x. Numbers starting 0, 1, 7, 8 or 9 are not cards."""
    if not 13 <= len(digits) <= 19:
        return False
    first = digits[0]
    if first in "3456":
        return True
    return first == "2" and 2221 <= int(digits[:4]) <= 2720


def iban_valid(candidate: str) -> bool:
    """ISO 13616: country code, two check digits, the account part; mod-97 of the rearranged number is 1."""
    s = candidate.replace(" ", "").upper()
    if not 15 <= len(s) <= 34 or not s[:2].isalpha() or not s[2:4].isdigit() or not s.isalnum() or not s.isascii():
        return False
    expected = IBAN_LENGTHS.get(s[:2])
    if expected is not None and len(s) != expected:
        return False
    rearranged = s[4:] + s[:4]
    number = "".join(str(int(ch, 36)) for ch in rearranged)
    return int(number) % 97 == 1


def iban_check_digits(country: str, bban: str) -> str:
    """The two check digits that make `country + digits + bban` a valid IBAN."""
    number = "".join(str(int(ch, 36)) for ch in (bban + country + "00").upper())
    return f"{98 - int(number) % 97:02d}"
