"""Code shared by every Lambda function of the pipeline.

Shipped to Lambda as the "runtime" layer (together with Powertools), so no function imports another
function's module. Keep it free of heavy imports: pandas belongs to the integrity check only.
"""
