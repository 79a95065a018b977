"""DeferredNotices: what the checks log and warn comes out only when the command goes ahead (issue 8, case 11)."""

from __future__ import annotations

import logging
import warnings

import pytest

from geop2p.export.notices import DeferredNotices

log = logging.getLogger("geop2p.export.test_notices")


def test_held_notices_come_out_on_release_in_order(caplog, recwarn):
    caplog.set_level("INFO")
    with DeferredNotices() as notices:
        log.info("first")
        log.warning("second")
        warnings.warn("a warning", UserWarning)
        logging.getLogger("rasterio.test").warning("not geop2p's: passes at once")
    assert [r.getMessage() for r in caplog.records] == ["not geop2p's: passes at once"]
    assert not [w for w in recwarn if "a warning" in str(w.message)]
    notices.release()
    assert [r.getMessage() for r in caplog.records][1:] == ["first", "second"]
    assert [str(w.message) for w in recwarn if "a warning" in str(w.message)] == ["a warning"]
    notices.release()  # twice: nothing more
    assert len(caplog.records) == 3


def test_notices_of_a_refused_command_are_dropped(caplog):
    caplog.set_level("INFO")
    with pytest.raises(ValueError):
        with DeferredNotices():
            log.warning("No test chips")
            raise ValueError("refused")
    assert not caplog.records
    log.warning("after")  # the hold is gone
    assert [r.getMessage() for r in caplog.records] == ["after"]


def test_released_warnings_keep_the_filters_of_their_module():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        warnings.filterwarnings("ignore", message="ignored", module=__name__)
        with DeferredNotices() as notices:
            warnings.warn("ignored", UserWarning)
            warnings.warn("shown", UserWarning)
        notices.release()
    assert [str(w.message) for w in caught] == ["shown"]
