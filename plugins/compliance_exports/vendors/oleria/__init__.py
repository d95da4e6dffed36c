"""Oleria downloads API: context catalogue, filterBy/sortBy rules and their evaluation."""
