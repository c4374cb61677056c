"""How long things take, in words: said once for every log line.

`format_duration` (45s, 12m05s, 2h55m, 3d04h) for ETAs and elapsed times
(a child's progress line, the search's trial line); `rough_duration`
(~0.4 s, ~2.9 h, ~180 days) for projections; `coarse_duration` (90s, 5m,
2h05m, 3d) for how long ago something began (the run lock's holder).
"""


def format_duration(seconds) -> str:
  """A duration in the units that matter: 45s, 12m05s, 2h55m, 3d04h."""
  seconds = int(round(max(0.0, float(seconds))))
  if seconds < 60:
    return f"{seconds}s"
  minutes, s = divmod(seconds, 60)
  if minutes < 60:
    return f"{minutes}m{s:02d}s"
  hours, m = divmod(minutes, 60)
  if hours < 24:
    return f"{hours}h{m:02d}m"
  days, h = divmod(hours, 24)
  return f"{days}d{h:02d}h"


def rough_duration(seconds) -> str:
  """'~0.4 s', '~40 s', '~12 min', '~2.9 h', '~4.5 days', '~180 days'."""
  s = max(0.0, float(seconds))
  if s < 10:
    return f"~{s:.1f} s"
  if s < 90:
    return f"~{s:.0f} s"
  if s < 90 * 60:
    return f"~{s / 60:.0f} min"
  if s < 36 * 3600:
    return f"~{s / 3600:.1f} h"
  days = s / 86400
  return f"~{days:.1f} days" if days < 10 else f"~{days:,.0f} days"


def coarse_duration(seconds) -> str:
  """An age in whole units: '90s' (under 2 min), '5m' (under 2 h),
  '2h05m' (under 2 days), '3d'."""
  seconds = int(seconds)
  if seconds < 120:
    return f"{seconds}s"
  if seconds < 7200:
    return f"{seconds // 60}m"
  if seconds < 2 * 86400:
    return f"{seconds // 3600}h{(seconds % 3600) // 60:02d}m"
  return f"{seconds // 86400}d"
