"""Open Bandit Dataset logs: columns by name, catalogue size, and the errors a malformed
file gets. Fixtures are written here in OBD's exact layout; the real files stay out."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from training.obd import USER_FEATURES, load_obd

N_AFFINITIES = 3  # the real files have 80; the loader must not care how many


def write_obd_log(
    path: Path,
    actions: npt.ArrayLike,
    positions: npt.ArrayLike,
    clicks: npt.ArrayLike,
    propensities: npt.ArrayLike,
) -> Path:
    """A log in OBD's layout: unnamed index, timestamp with offset, hashed user features."""
    header = [
        "",
        "timestamp",
        "item_id",
        "position",
        "click",
        "propensity_score",
        *USER_FEATURES,
        *(f"user-item_affinity_{i}" for i in range(N_AFFINITIES)),
    ]
    start = dt.datetime(2019, 11, 24, tzinfo=dt.UTC)
    lines = [",".join(header)]
    rows = zip(
        np.asarray(actions).tolist(),
        np.asarray(positions).tolist(),
        np.asarray(clicks).tolist(),
        np.asarray(propensities).tolist(),
        strict=True,
    )
    for i, (item, position, click, propensity) in enumerate(rows):
        stamp = (start + dt.timedelta(seconds=17 * i, microseconds=4101)).isoformat(sep=" ")
        users = [f"{(i * 7 + k) % 3:032x}" for k in range(len(USER_FEATURES))]
        affinity = ["0.0"] * N_AFFINITIES
        fields = [i, stamp, item, position, int(click), propensity, *users, *affinity]
        lines.append(",".join(str(f) for f in fields))
    path.write_text("\n".join(lines) + "\n")
    return path


def write_item_context(folder: Path, n_items: int) -> None:
    rows = [",item_id,item_feature_0,item_feature_1,item_feature_2,item_feature_3"]
    rows += [f"{i},{i},-0.5,{'a' * 32},{'b' * 32},{'c' * 32}" for i in range(n_items)]
    (folder / "item_context.csv").write_text("\n".join(rows) + "\n")


def small_log(path: Path) -> Path:
    return write_obd_log(path, [14, 3, 0], [1, 2, 3], [0, 1, 0], [0.0125, 0.087125, 4.5e-05])


def test_a_log_gives_one_row_per_impression_as_typed_columns(tmp_path: Path) -> None:
    log = load_obd(small_log(tmp_path / "all.csv"))
    assert len(log) == 3
    assert log.actions.dtype == np.int64
    assert log.actions.tolist() == [14, 3, 0]
    assert log.positions.tolist() == [1, 2, 3]
    assert log.rewards.dtype == np.float64
    assert log.rewards.tolist() == [0.0, 1.0, 0.0]
    assert log.propensities.tolist() == [0.0125, 0.087125, 4.5e-05]
    assert log.timestamps.dtype == np.dtype("datetime64[us]")
    assert str(log.timestamps[1]) == "2019-11-24T00:00:17.004101"
    assert log.user_features.shape == (3, len(USER_FEATURES))
    assert log.user_features[0, 0] == f"{0:032x}"


def test_the_catalogue_size_comes_from_item_context_beside_the_log(tmp_path: Path) -> None:
    write_item_context(tmp_path, 80)
    assert load_obd(small_log(tmp_path / "all.csv")).n_actions == 80


def test_without_item_context_the_catalogue_is_items_up_to_the_largest_id(tmp_path: Path) -> None:
    assert load_obd(small_log(tmp_path / "all.csv")).n_actions == 15


def test_an_item_outside_the_catalogue_is_refused(tmp_path: Path) -> None:
    write_item_context(tmp_path, 10)
    with pytest.raises(ValueError, match="item_id 14 is outside the 10 items"):
        load_obd(small_log(tmp_path / "all.csv"))


def test_a_timestamp_with_another_offset_is_converted_to_utc(tmp_path: Path) -> None:
    path = small_log(tmp_path / "all.csv")
    text = path.read_text().replace("2019-11-24 00:00:00.004101+00:00", "2019-11-24T09:00:00+09:00")
    log = load_obd(_write(path, text))
    assert str(log.timestamps[0]) == "2019-11-24T00:00:00.000000"


@pytest.mark.parametrize(
    ("old", "new", "problem"),
    [
        (",1,0.087125,", ",2,0.087125,", "click '2' is not 0 or 1"),
        (",1,0.087125,", ",1,0,", "propensity_score '0' is not in (0, 1]"),
        (",1,0.087125,", ",1,1.5,", "propensity_score '1.5' is not in (0, 1]"),
        (",1,0.087125,", ",1,high,", "propensity_score 'high' is not a number"),
        (",3,2,1,", ",-3,2,1,", "item_id '-3' is not a non-negative integer"),
        (",3,2,1,", ",3,two,1,", "position 'two' is not a non-negative integer"),
        ("2019-11-24 00:00:17.004101+00:00", "yesterday", "timestamp 'yesterday'"),
        (",0.0,0.0,0.0\n1,", ",0.0,0.0\n1,", "fields, the header has"),
    ],
)
def test_a_malformed_row_is_reported_with_file_and_line(
    tmp_path: Path, old: str, new: str, problem: str
) -> None:
    path = small_log(tmp_path / "all.csv")
    text = path.read_text()
    assert old in text
    with pytest.raises(ValueError, match=re.escape(problem)) as caught:
        load_obd(_write(path, text.replace(old, new, 1)))
    assert f"{path}:" in str(caught.value)


def test_a_file_without_the_obd_columns_is_refused(tmp_path: Path) -> None:
    path = _write(tmp_path / "all.csv", "user,item,rating\n1,2,5\n")
    with pytest.raises(ValueError, match="not an Open Bandit Dataset log; missing timestamp"):
        load_obd(path)


@pytest.mark.parametrize(("text", "problem"), [("", "empty file"), ("\n", "empty file")])
def test_an_empty_file_is_refused(tmp_path: Path, text: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        load_obd(_write(tmp_path / "all.csv", text))


def test_a_header_without_rows_is_refused(tmp_path: Path) -> None:
    path = small_log(tmp_path / "all.csv")
    header = path.read_text().splitlines()[0]
    with pytest.raises(ValueError, match="no logged rows"):
        load_obd(_write(path, header + "\n"))


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path
