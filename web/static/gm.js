// gridmeter pages: live values and charts (Documentation/web.md).
