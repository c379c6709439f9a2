"""From the files a run wrote to numbers: metrics, the ideal model, the fidelity verdict, link
utilisation, failure impact, comparisons. Pure: reads CSV/JSON, never touches a network.
"""
