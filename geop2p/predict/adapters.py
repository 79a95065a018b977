"""Inputs other than rasters: the validity of a plain array, and ``xarray.DataArray`` in and out.

Example:
    >>> import numpy as np
    >>> array_valid(np.array([[[1.0, -9999.0, np.nan]]]), -9999.0).tolist()
    [[True, False, False]]
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from geop2p.errors import InputError

if TYPE_CHECKING:
    from geop2p.predict.engine import Progress
    from geop2p.predict.translator import Translator

__all__ = ["array_valid", "predict_dataarray"]


def array_valid(array: np.ndarray, nodata: float | None) -> np.ndarray:
    """Valid where no band equals ``nodata`` (NaN: no band is NaN) and, for floats, no band is NaN.

    Args:
        array: ``(bands, height, width)`` values.
        nodata: the nodata value, or None.

    Returns:
        ``(height, width)`` bool.

    Example:
        >>> array_valid(np.array([[[0, 5]], [[7, 7]]], np.uint8), 0).tolist()
        [[False, True]]
    """
    valid = np.ones(array.shape[-2:], bool)
    if nodata is not None:
        valid &= ~(np.isnan(array).any(axis=0) if math.isnan(nodata) else (array == nodata).any(axis=0))
    if np.issubdtype(array.dtype, np.floating):
        valid &= ~np.isnan(array).any(axis=0)
    return valid


def predict_dataarray(translator: "Translator", da: Any, progress: "Progress | None" = None) -> Any:
    """Predict an ``xarray.DataArray`` (``(band, y, x)`` or ``(y, x)``) with rioxarray georeferencing.

    When the array has exactly the model's number of bands they are used in
    order; otherwise the bundle's (or ``config.bands``') 1-based bands are
    selected.  Invalid pixels: the array's nodata (``da.rio.nodata``), NaN.

    Args:
        translator: the :class:`~geop2p.predict.Translator` to run.
        da: the DataArray (``rioxarray.open_rasterio`` gives one).
        progress: called as ``progress(windows_done, windows_total)``.

    Returns:
        A ``(band, y, x)`` DataArray in the target dtype with the same ``y``/``x``
        coordinates, ``rio.crs`` and ``rio.transform()``, the target nodata
        written with ``rio.write_nodata`` and band names in ``long_name``.

    Raises:
        InputError: not a 2-D or 3-D array. BandIndexError: the array lacks the model's bands.

    Example:
        >>> import rioxarray  # doctest: +SKIP
        >>> da = rioxarray.open_rasterio("scene.tif")  # doctest: +SKIP
        >>> pred = predict_dataarray(translator, da)  # doctest: +SKIP
        >>> pred.rio.to_raster("scene_pred.tif")  # doctest: +SKIP
    """
    import rioxarray  # noqa: F401 - registers the .rio accessor
    import xarray as xr

    if da.ndim == 2:
        da = da.expand_dims("band")
    if da.ndim != 3:
        raise InputError(f"predict_dataarray expects a (band, y, x) or (y, x) DataArray; got dims {da.dims}.")
    y_dim, x_dim = da.rio.y_dim, da.rio.x_dim
    band_dim = next(d for d in da.dims if d not in (y_dim, x_dim))
    da = da.transpose(band_dim, y_dim, x_dim)
    count = da.sizes[band_dim]
    if count == translator.in_channels and translator.config.bands is None:
        idx = list(range(count))
    else:
        idx = [b - 1 for b in translator.scene_bands(count, "the DataArray")]
    data = np.asarray(da.values)[idx]
    nodata = da.rio.nodata if da.rio.nodata is not None else da.rio.encoded_nodata
    valid = array_valid(data, None if nodata is None else float(nodata))
    pred = translator.predict_array(data, valid, progress=progress)
    target = translator.header.target
    out = xr.DataArray(
        pred,
        dims=("band", y_dim, x_dim),
        coords={"band": np.arange(1, translator.out_channels + 1), y_dim: da[y_dim].values, x_dim: da[x_dim].values},
        attrs={"long_name": tuple(target.band_names)},
        name=da.name,
    )
    if da.rio.crs is not None:
        out = out.rio.write_crs(da.rio.crs)
    out = out.rio.write_transform(da.rio.transform())
    nd = target.nodata
    if nd is None and np.issubdtype(np.dtype(target.dtype), np.floating):
        nd = float("nan")
    return out.rio.write_nodata(nd, encoded=False) if nd is not None else out
