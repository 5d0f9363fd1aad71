"""Run an iterator in a background thread a bounded number of items ahead of its consumer.

The scorer prepares chunks (decoding, resampling, log-mel) this way while ONNX Runtime and TFLite,
which release the GIL, run the members in the calling thread.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator


class _Raised:
    def __init__(self, error: BaseException) -> None:
        self.error = error


_END = object()


def in_background(items: Iterator, ahead: int) -> Iterator:
    """Iterate `items` in a daemon thread, at most `ahead` items ahead of the consumer.

    An exception raised by `items` is raised again in the consumer. When the consumer stops early,
    the thread stops at its next item and closes `items`.
    """
    buffer: queue.Queue = queue.Queue(maxsize=ahead)
    stop = threading.Event()

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                buffer.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def pump() -> None:
        try:
            for item in items:
                if not put(item):
                    return
            put(_END)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, which raises it
            put(_Raised(exc))
        finally:
            if hasattr(items, "close"):
                items.close()

    thread = threading.Thread(target=pump, name="pantanal-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            item = buffer.get()
            if item is _END:
                return
            if isinstance(item, _Raised):
                raise item.error
            yield item
    finally:
        stop.set()
        thread.join()
