"""The web layer: `garden serve`'s pages and JSON API (a sibling of `cli/`, over `flows.app`)."""
