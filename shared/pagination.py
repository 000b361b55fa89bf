"""Pages as the API promises them: ?page=N&page_size=M -> {count, next, previous, results}."""

from rest_framework import pagination
from rest_framework.utils.urls import replace_query_param


class PageNumberPagination(pagination.PageNumberPagination):
    page_size = 20
    page_size_query_param = "page_size"
    max_page_size = 100
    #: whether the link back to the first page says ``page=1`` (the catalog's do) or leaves it out
    name_first_page = False

    def get_previous_link(self) -> str | None:
        if self.name_first_page and self.page.has_previous() and self.page.previous_page_number() == 1:
            return replace_query_param(self.request.build_absolute_uri(), self.page_query_param, 1)
        return super().get_previous_link()

    def get_schema_operation_parameters(self, view) -> list[dict]:
        parameters = super().get_schema_operation_parameters(view)
        bounds = {
            self.page_query_param: {"minimum": 1},  # 404 past the last page
            self.page_size_query_param: {"minimum": 1, "maximum": self.max_page_size},
        }
        for parameter in parameters:
            parameter["schema"] = {**parameter["schema"], **bounds.get(parameter["name"], {})}
        return parameters
