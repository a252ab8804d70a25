"""Shared fixtures: small synthetic data built in memory."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
