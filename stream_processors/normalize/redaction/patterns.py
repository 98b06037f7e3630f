"""Compiled patterns for every secret kind, and the key words that mark a secret value.

Kept apart from the detectors so the regular expressions can be read (and reviewed for
catastrophic backtracking) in one place. Every pattern is linear: no nested quantifiers,
and each one starts at a literal, a boundary look-behind or a narrow character class.
"""

from __future__ import annotations

import re

from .model import SecretKind

PEM_BLOCK = re.compile(
    r"-----BEGIN[A-Z0-9 ]{0,40} PRIVATE KEY(?: BLOCK)?-----"
    r"(?:.*?-----END[A-Z0-9 ]{0,40} PRIVATE KEY(?: BLOCK)?-----|.*)",
    re.DOTALL,
)

# scheme://user:password@host -- only the password group is redacted.
URL_USERINFO = re.compile(r"[A-Za-z][A-Za-z0-9+.-]{1,20}://[^\s:/?#@<>]*:(?P<pw>[^\s/?#]+)@")

AUTH_HEADER = re.compile(
    r"(?i)(?:\b(?:proxy-)?authorization(?:\\?[\"'])?\s*[:=]\s*(?:\\?[\"'])?\s*"
    r"(?:(?P<scheme>bearer|basic|token|apikey|sso-key)\s+)?|\b(?P<bare>bearer)\s+)"
    r"(?P<val>[A-Za-z0-9\-._~+/:]+=*)"
)

JWT = re.compile(r"(?<![\w-])eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*")

# Vendor tokens and AWS access key ids are searched only inside long token runs (RUN).
VENDOR = re.compile(
    r"(?<![A-Za-z0-9])(?:"
    r"(?P<github>gh[pousr]_[A-Za-z0-9]{30,255}|github_pat_[A-Za-z0-9_]{40,255})"
    r"|(?P<slack>xox[abposr]-[A-Za-z0-9-]{10,}|services/T[A-Za-z0-9]{6,}/B[A-Za-z0-9]{6,}/"
    r"[A-Za-z0-9]{16,})"
    r"|(?P<stripe>(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{10,}|whsec_[A-Za-z0-9]{20,})"
    r"|(?P<google>AIza[0-9A-Za-z_-]{35})"
    r"|(?P<aws>(?<![A-Z0-9])(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}(?![A-Z0-9]))"
    r")"
)
VENDOR_KINDS: dict[str, SecretKind] = {
    "github": SecretKind.GITHUB_TOKEN,
    "slack": SecretKind.SLACK_TOKEN,
    "stripe": SecretKind.STRIPE_KEY,
    "google": SecretKind.GOOGLE_API_KEY,
    "aws": SecretKind.AWS_ACCESS_KEY,
}
VENDOR_HINT = re.compile(r"gh[pousr]_|github_pat_|xox|services/T|_live_|_test_|whsec_|AIza|A[KSBC][IC]A")

# Runs of base64 / base64url characters ('=' only as trailing padding), searched in
# " " + text: starting at a separator lets the engine hop between word boundaries, about
# twice as fast as a look-behind. 15 is the shortest vendor token (xoxb-<10>).
RUN_MIN = 15
RUN = re.compile(rf"[^A-Za-z0-9+/_-]([A-Za-z0-9+/_-]{{{RUN_MIN},}}(?:={{1,2}}(?![A-Za-z0-9+/_-]))?)")
RUN_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/_-")
AWS_SECRET_SHAPE = re.compile(r"[A-Za-z0-9+/]{40}")

# A sensitive key word directly followed by a separator; the value is scanned in Python.
# ``pass`` needs a non-letter before it so ``bypass=`` or ``compass:`` are not keys.
KEY_VALUE = re.compile(  # matched against the ASCII-lowercased text
    r"(?P<word>password|passwd|passphrase|requirepass|(?<![a-z])pass|(?<![a-z])pwd"
    r"|secret|token|(?:api|access|secret|private|signing|encryption|master|client|app)"
    r"[_-]?key|apikey|credentials?)"
    r"(?P<kq>\\?[\"'])?(?P<sep>\s*(?:=>|[=:])\s*|\s+(?=\S))"
)

# The look-behinds follow the first digit, so the engine skips quickly to digits 2-6 and
# only then checks the boundary. CARD_HINT (no alternation, so cheaper per digit) finds
# where CARD can first match; on ordinary lines it finds nothing.
CARD_HINT = re.compile(r"[2-6](?<![\w.+-].)\d{3}(?:[ -]?\d{4}[ -]?\d{4}|[ -]\d{6})")
CARD = re.compile(
    r"[2-6](?<![\w.+-].)(?:\d{12,18}|\d{3}(?P<s>[ -])\d{4}(?P=s)\d{4}(?P=s)\d{1,7}"
    r"|(?<=3)[47]\d\d(?P<a>[ -])\d{6}(?P=a)\d{5})(?![\w-]|[.,]\d)"
)

# Searched from the '@' (a literal, so fast); the local part is found by walking left.
EMAIL_DOMAIN = re.compile(r"@[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63})*\.[A-Za-z]{2,24}(?![\w-])")
EMAIL_LOCAL_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._%+-")

# Unquoted values that are states or placeholders, not secrets.
NOT_A_VALUE = frozenset(
    {
        "", "null", "none", "nil", "true", "false", "yes", "no", "on", "off", "ok",
        "required", "missing", "invalid", "empty", "expired", "revoked", "redacted",
        "hidden", "masked", "set", "unset", "changed", "updated", "reset", "success",
        "failed", "failure", "undefined", "n/a", "na", "blank", "provided", "present",
        "rotated", "refreshed", "valid", "verified", "accepted", "rejected", "denied",
    }
)  # fmt: skip
