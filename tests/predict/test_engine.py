"""The engine on its own: fake read/predict/sink callables, no rasters, no bundles; stages stop together on failure."""

from __future__ import annotations

import os
import signal
import threading
import time

import numpy as np
import pytest

from geop2p.normalize import Normalizer
from geop2p.predict.engine import TargetCast, run_pipeline
from geop2p.tiling import plan_windows


def _pipeline_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name in ("geop2p-read", "geop2p-write") and t.is_alive()]


class _Fake:
    """An in-memory scene behind ``read``, an identity ``predict`` and a ``sink`` filling ``out``; each can fail."""

    def __init__(self, image: np.ndarray, fail_read_at=None, fail_predict_at=None, fail_sink_at=None):
        self.image, self.out = image, np.full_like(image, np.nan)
        self.fail_read_at, self.fail_predict_at, self.fail_sink_at = fail_read_at, fail_predict_at, fail_sink_at
        self.reads = self.predicts = self.sinks = 0
        self.sink_rows: list[tuple[int, int]] = []

    def read(self, strip):
        self.reads += 1
        if self.reads == self.fail_read_at:
            raise OSError("read failed")
        r1 = min(strip.read_row_end, self.image.shape[1])
        return self.image[:, strip.read_row_off : r1], np.ones((r1 - strip.read_row_off, self.image.shape[2]), bool)

    def predict(self, batch):
        self.predicts += 1
        if self.predicts == self.fail_predict_at:
            raise RuntimeError("forward failed")
        return batch.copy()

    def sink(self, row_off, rows, valid):
        self.sinks += 1
        if self.sinks == self.fail_sink_at:
            raise OSError("disk full")
        assert valid.shape == rows.shape[1:] and valid.all()
        self.sink_rows.append((row_off, rows.shape[1]))
        self.out[:, row_off : row_off + rows.shape[1]] = rows


@pytest.mark.parametrize("shape", [(150, 97), (20, 40), (64, 64), (300, 70)])
@pytest.mark.parametrize("overlap, strip_rows, batch_size", [(0, 1, 1), (16, 1, 8), (32, 2, 3)])
def test_identity_forward_reproduces_the_input_and_sinks_every_row_once_in_order(rng, shape, overlap, strip_rows,
                                                                                 batch_size):
    image = rng.uniform(-1, 1, size=(2, *shape)).astype(np.float32)
    fake = _Fake(image)
    plan = plan_windows(*shape, window=64, overlap=overlap, strip_rows=strip_rows)
    calls = []
    run_pipeline(plan, fake.read, fake.predict, fake.sink, channels=2, batch_size=batch_size,
                 progress=lambda d, n: calls.append((d, n)))
    np.testing.assert_allclose(fake.out, image, atol=1e-6, rtol=0)
    starts = [r for r, _ in fake.sink_rows]
    assert starts == sorted(starts) and sum(n for _, n in fake.sink_rows) == shape[0]
    assert fake.reads == len(plan.strips) and calls[-1] == (plan.n_windows, plan.n_windows)
    assert not _pipeline_threads()


def test_predict_sees_whole_padded_windows_in_batches(rng):
    image = rng.uniform(-1, 1, size=(1, 20, 40)).astype(np.float32)  # smaller than a window: reflect-padded
    shapes = []

    def predict(batch):
        shapes.append(batch.shape)
        assert batch.flags["C_CONTIGUOUS"] and batch.dtype == np.float32
        return batch[:, :1] * 2

    fake = _Fake(image)
    run_pipeline(plan_windows(20, 40, 64, 16), fake.read, predict, fake.sink, channels=1)
    assert shapes == [(1, 1, 64, 64)]
    np.testing.assert_allclose(fake.out, image * 2, atol=1e-6)


@pytest.mark.parametrize("stage", ["read", "predict", "sink"])
def test_a_failing_stage_is_raised_and_every_thread_stops(rng, stage):
    """A reader-thread, forward (calling thread) or writer-thread error reaches the caller; both threads end early."""
    image = rng.uniform(-1, 1, size=(1, 64 * 20, 64)).astype(np.float32)
    plan = plan_windows(64 * 20, 64, window=64, overlap=0)  # 20 strips
    assert len(plan.strips) == 20
    fake = _Fake(image, **{f"fail_{stage}_at": 2})
    error = {"read": (OSError, "read failed"), "predict": (RuntimeError, "forward failed"),
             "sink": (OSError, "disk full")}[stage]
    with pytest.raises(error[0], match=error[1]):
        run_pipeline(plan, fake.read, fake.predict, fake.sink, channels=1, batch_size=1, queue_depth=1)
    assert not _pipeline_threads(), "the reader and writer threads are stopped and joined before the error is raised"
    # the stages gave up instead of running through the scene: with queues of one strip, the reader is at most a
    # few strips ahead of the stage that failed
    assert fake.reads <= 6 and fake.predicts <= 6 and fake.sinks <= 2
    assert np.isnan(fake.out[:, -64:]).all()


def test_reader_failure_on_the_first_strip_predicts_nothing(rng):
    image = rng.uniform(-1, 1, size=(1, 200, 64)).astype(np.float32)
    fake = _Fake(image, fail_read_at=1)
    with pytest.raises(OSError, match="read failed"):
        run_pipeline(plan_windows(200, 64, 64, 16), fake.read, fake.predict, fake.sink, channels=1)
    assert fake.predicts == 0 and fake.sinks == 0 and not _pipeline_threads()


def test_writer_failure_is_raised_in_the_caller(make_translator, rng):
    t = make_translator()

    def bad_sink(*args):
        raise OSError("disk full")

    x = rng.normal(size=(2, 200, 64)).astype(np.float32)
    plan = plan_windows(200, 64, 64, 16)
    with pytest.raises(OSError, match="disk full"):
        t._run(plan, lambda s: (x[:, s.read_row_off : s.read_row_end], np.ones((s.read_height, 64), bool)), bad_sink, None)


def test_an_interrupt_stops_both_threads_before_it_is_raised(rng):
    """Ctrl-C or SIGTERM (a KeyboardInterrupt in the calling thread) stops the reader and the writer first."""
    image = rng.uniform(-1, 1, size=(1, 64 * 20, 64)).astype(np.float32)
    fake = _Fake(image)

    def predict(batch):
        if fake.predicts == 3:
            raise KeyboardInterrupt
        return fake.predict(batch)

    with pytest.raises(KeyboardInterrupt):
        run_pipeline(plan_windows(64 * 20, 64, 64, 0), fake.read, predict, fake.sink, channels=1, batch_size=1)
    assert not _pipeline_threads() and fake.sinks <= 3


@pytest.mark.skipif(signal.getsignal(signal.SIGINT) is not signal.default_int_handler,
                    reason="needs Python's own SIGINT handler")
def test_a_second_interrupt_while_stopping_still_waits_for_the_writer(rng):
    """A second Ctrl-C (or SIGTERM) while the threads are being joined must not leave the writer running.

    Otherwise the caller would close and delete the output the writer thread is still writing into.
    """
    image = rng.uniform(-1, 1, size=(1, 64 * 5, 64)).astype(np.float32)
    fake = _Fake(image)
    started, finished = threading.Event(), threading.Event()

    def slow_sink(row_off, rows, valid):
        started.set()
        time.sleep(1.0)  # a long write the stop flag cannot cut short
        fake.sink(row_off, rows, valid)
        finished.set()

    def predict(batch):
        if fake.predicts == 1:  # the first strip is with the writer: interrupt, and interrupt again 0.3 s later
            assert started.wait(10)
            threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT)).start()
            raise KeyboardInterrupt
        return fake.predict(batch)

    with pytest.raises(KeyboardInterrupt):
        run_pipeline(plan_windows(64 * 5, 64, 64, 0), fake.read, predict, slow_sink, channels=1, batch_size=1)
    assert finished.is_set() and not _pipeline_threads(), "the writer finished its write before the caller went on"


# ------------------------------------------------------------------------------------ target cast
def test_cast_rounds_clips_and_nudges_integer_values_off_nodata():
    cast = TargetCast(Normalizer.identity(1), np.dtype("uint8"), 0)
    rows = np.array([[[-3.0, 0.2, 7.6, 300.0, 254.6]]], np.float32)
    valid = np.array([[True, True, True, True, False]])
    np.testing.assert_array_equal(cast(rows, valid), [[[1, 1, 8, 255, 255]]])
    assert cast.fill_value == 0
    top = TargetCast(Normalizer.identity(1), "uint8", 255)
    np.testing.assert_array_equal(top(np.array([[[300.0]]]), np.ones((1, 1), bool)), [[[254]]])


def test_cast_nudges_float_values_off_a_finite_nodata_and_fills_nan_without_one():
    cast = TargetCast(Normalizer.identity(1), np.dtype("float32"), -9999.0)
    out = cast(np.array([[[-9999.0, 1.5]]], np.float32), np.ones((1, 2), bool))
    assert out.dtype == np.float32 and out[0, 0, 0] == np.nextafter(np.float32(-9999), np.float32(np.inf))
    assert out[0, 0, 1] == 1.5
    assert np.isnan(TargetCast(Normalizer.identity(1), "float32", None).fill_value)
    assert TargetCast(Normalizer.identity(1), "int16", None).fill_value == 0
