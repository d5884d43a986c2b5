"""Session tokens: how the embedded app's frontend calls `/v1` as the shop's staff.

Shopify hands the frontend a session token (an HS256 JWT signed with the client secret, living
about a minute); it is sent as `Authorization: Bearer <token>`. It is accepted when the
signature verifies with the client secret (or the previous one during rotation), `aud` is the
client id, `exp` and `nbf` hold within LEEWAY_S, `dest` is `https://{shop}` for a myshopify.com
name and `iss` is that shop's admin. Whether that shop installed the app is for the caller to
check (app.deps).
"""

from __future__ import annotations

from dataclasses import dataclass

import jwt

from app.shopify.app_config import SHOP_DOMAIN, ShopifyApp

LEEWAY_S = 5
REQUIRED_CLAIMS = ["iss", "dest", "aud", "sub", "exp", "nbf"]


class InvalidSessionToken(Exception):
    pass


@dataclass(frozen=True, slots=True)
class StaffSession:
    shop: str  # the myshopify.com name
    user_id: str  # the staff member (`sub`)
    token: str  # the raw session token (the subject of a token exchange)


def looks_like_session_token(credential: str) -> bool:
    return credential.count(".") == 2 and credential.startswith("eyJ")


def verify(token: str, app: ShopifyApp) -> StaffSession:
    claims = None
    for secret in app.secrets:
        try:
            claims = jwt.decode(
                token,
                secret,
                algorithms=["HS256"],
                audience=app.client_id,
                leeway=LEEWAY_S,
                options={"require": REQUIRED_CLAIMS},
            )
            break
        except jwt.InvalidSignatureError:
            continue  # perhaps signed with the other secret
        except jwt.PyJWTError as exc:
            raise InvalidSessionToken(str(exc)) from exc
    if claims is None:
        raise InvalidSessionToken("signature does not verify")
    dest = str(claims["dest"])
    shop = dest.removeprefix("https://")
    if not dest.startswith("https://") or not SHOP_DOMAIN.match(shop):
        raise InvalidSessionToken("dest is not a myshopify.com shop")
    if str(claims["iss"]).rstrip("/") != f"{dest}/admin":
        raise InvalidSessionToken("iss is not the shop's admin")
    return StaffSession(shop=shop, user_id=str(claims["sub"]), token=token)
