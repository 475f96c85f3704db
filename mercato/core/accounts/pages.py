PAGE_ROUTES: list[object] = []
