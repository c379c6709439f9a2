"""Numbers to what a person reads: the printed run summary, comparison tables, CSV/JSON/HTML
reports and plots. Pure.
"""
