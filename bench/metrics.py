"""What the benchmark measures: one `Metric` per table row, and the targets of the issue."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from bench.sizes import MIB, Sizes


@dataclass(frozen=True)
class Metric:
    key: str
    template: str  # the row label; {fields} come from `label_fields`
    unit: str
    higher_is_better: bool

    def label(self, sizes: Sizes) -> str:
        return self.template.format(**label_fields(sizes))


def label_fields(sizes: Sizes) -> dict[str, object]:
    fields: dict[str, object] = dict(asdict(sizes))
    large = sizes.large_file_bytes
    fields["large"] = (
        f"{large // (1024 * MIB)} GiB" if large >= 1024 * MIB else f"{large // MIB} MiB"
    )
    fields["small_kib"] = sizes.small_file_bytes // 1024
    fields["tree_files"] = sizes.tree_files
    return fields


# Workloads (1) to (5): every server, every round.
METRICS: tuple[Metric, ...] = (
    Metric("large_put_mb_s", "(1) {large} PUT, streamed", "MB/s", True),
    Metric("large_get_mb_s", "(1) {large} GET", "MB/s", True),
    Metric(
        "small_put_c1_files_s", "(2) {small_files:,} x {small_kib} KiB PUT, c1", "files/s", True
    ),
    Metric(
        "small_put_c32_files_s",
        "(2) {small_files:,} x {small_kib} KiB PUT, c{concurrency}",
        "files/s",
        True,
    ),
    Metric("small_put_c32_cpu_us", "(2) same PUT c{concurrency}: server CPU each", "µs", False),
    Metric("small_put_c32_cores", "(2) same PUT c{concurrency}: server cores busy", "cores", False),
    Metric(
        "small_get_c32_req_s",
        "(2) {small_files:,} x {small_kib} KiB GET, c{concurrency}",
        "req/s",
        True,
    ),
    Metric("small_get_c32_cpu_us", "(2) same GET c{concurrency}: server CPU each", "µs", False),
    Metric("small_get_c32_cores", "(2) same GET c{concurrency}: server cores busy", "cores", False),
    Metric("propfind_allprop_s", "(3) PROPFIND D1, {listing_files:,} files, allprop", "s", False),
    Metric("propfind_named_s", "(3) PROPFIND D1, {listing_files:,} files, 4 props", "s", False),
    Metric("tree_mkcol_s", "(4) MKCOL {tree_folders} + 1 folders", "s", False),
    Metric("tree_move_s", "(4) MOVE tree of {tree_files:,} files", "s", False),
    Metric("tree_copy_s", "(4) COPY tree of {tree_files:,} files", "s", False),
    Metric("tree_delete_s", "(4) DELETE both trees", "s", False),
    Metric("tree_total_s", "(4) MKCOL+MOVE+COPY+DELETE, total", "s", False),
    Metric("peak_rss_mib", "(5) peak RSS, all processes", "MiB", False),
    Metric("peak_rss_process_mib", "(5) peak RSS, largest process", "MiB", False),
)

# Workload (6): Ecrin only.
SCALE_METRICS: tuple[Metric, ...] = (
    Metric(
        "propfind_empty_s", "(6) PROPFIND D1, {scale_listing_files:,} entries, empty", "s", False
    ),
    Metric(
        "propfind_populated_s",
        "(6) same, instance of {populated_files:,} files",
        "s",
        False,
    ),
    Metric("propfind_populated_ratio", "(6) populated / empty", "x", False),
    Metric("poll_p50_ms", "(6) {pollers:,} pollers, PROPFIND D0, p50", "ms", False),
    Metric("poll_p99_ms", "(6) {pollers:,} pollers, PROPFIND D0, p99", "ms", False),
    Metric("poll_req_s", "(6) {pollers:,} pollers, throughput", "req/s", True),
)


@dataclass(frozen=True)
class Target:
    text: str
    key: str
    peer: str | None  # None: the target bounds Ecrin's own value (or scale ratio)
    at_least: bool  # True: value >= bound; False: value <= bound
    bound: float


TARGETS: tuple[Target, ...] = (
    Target("Large PUT >= 1.0x Apache", "large_put_mb_s", "apache", True, 1.0),
    Target("Large GET >= 0.8x Apache", "large_get_mb_s", "apache", True, 0.8),
    Target("4 KiB PUT c32 >= 1.0x Apache", "small_put_c32_files_s", "apache", True, 1.0),
    Target("4 KiB GET c32 >= 0.5x Apache", "small_get_c32_req_s", "apache", True, 0.5),
    Target("4 KiB GET c32 >= 5x WsgiDAV", "small_get_c32_req_s", "wsgidav", True, 5.0),
    Target("PROPFIND D1 allprop no slower than Apache", "propfind_allprop_s", "apache", False, 1.0),
    Target("PROPFIND D1 4 props no slower than Apache", "propfind_named_s", "apache", False, 1.0),
    Target("MKCOL+MOVE+COPY+DELETE no slower than nginx", "tree_total_s", "nginx", False, 1.0),
    Target("Peak RSS <= 150 MiB per worker", "peak_rss_process_mib", None, False, 150.0),
    Target("Populated PROPFIND within 1.2x of empty", "propfind_populated_ratio", None, False, 1.2),
)
