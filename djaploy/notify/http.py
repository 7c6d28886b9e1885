"""POST a JSON body with the standard library; errors say what went wrong but never the URL
(webhook URLs carry their token)."""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Mapping


class NotifyError(Exception):
    """A notification was not delivered; the message is safe to print."""


def post(url: str, body: bytes, headers: Mapping[str, str], timeout: float) -> None:
    request = urllib.request.Request(url, data=body, method="POST",
                                     headers={"Content-Type": "application/json", "User-Agent": "djaploy", **headers})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            response.read()
    except urllib.error.HTTPError as error:
        raise NotifyError(f"HTTP {error.code}") from None
    except urllib.error.URLError as error:
        raise NotifyError(f"cannot reach it ({type(error.reason).__name__})") from None
    except (OSError, ValueError) as error:
        raise NotifyError(type(error).__name__) from None
