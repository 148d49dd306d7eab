"""The inspectors' review page (issue 20 item 5): a queue of new platform cases on a map of the grid,
each with its reports and evidence; confirm, reject with a reason, or correct the type, each written
as the `reviews` row `edge-agent platform-review` writes. The box's login (webauth) guards it."""
