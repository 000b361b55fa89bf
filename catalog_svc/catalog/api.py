"""The catalog's HTTP API: public list and detail (cached), internal batch details."""

from __future__ import annotations

from urllib.parse import urlencode

from drf_spectacular.utils import extend_schema
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from catalog import selectors, serializers
from shared.errors import NotFound
from shared.internal_auth import IsInternal
from shared.openapi import shop_errors


def _page_url(request, params: dict, page: int | None) -> str | None:
    if page is None:
        return None
    query = {k: v for k, v in request.query_params.items()}
    query["page"] = page
    return request.build_absolute_uri(request.path) + "?" + urlencode(query)


class ClothListView(APIView):
    permission_classes = [AllowAny]
    authentication_classes = []

    @extend_schema(
        parameters=[serializers.ClothListQuerySerializer],
        responses={200: serializers.ClothPageSerializer},
        summary="A page of clothes, filtered and sorted",
        tags=["catalog"],
    )
    @shop_errors(404)  # a page past the last
    def get(self, request):
        s = serializers.ClothListQuerySerializer(data=request.query_params)
        s.is_valid(raise_exception=True)
        q = s.validated_data
        filters = {k: q.get(k) or None for k in ("category", "brand")}
        filters.update({"on_sale": q["on_sale"], "in_stock": q["in_stock"], "sort": q["sort"]})
        page, size = q["page"], q["page_size"]

        def build() -> dict:
            qs = selectors.clothes(**filters)
            count = qs.count()
            start = (page - 1) * size
            if start >= count and page > 1:
                return {"missing": True}
            return {
                "count": count,
                "results": [selectors.list_item(c) for c in qs[start : start + size]],
                "has_next": start + size < count,
            }

        data = selectors.cached(f"list:{selectors.query_key({**filters, 'page': page, 'size': size})}", build)
        if data.get("missing"):
            raise NotFound("Invalid page.")
        return Response(
            {
                "count": data["count"],
                "next": _page_url(request, q, page + 1 if data["has_next"] else None),
                "previous": _page_url(request, q, page - 1 if page > 1 else None),
                "results": [selectors.refresh_on_sale(dict(item)) for item in data["results"]],
            }
        )


class ClothDetailView(APIView):
    permission_classes = [AllowAny]
    authentication_classes = []

    @extend_schema(
        responses={200: serializers.ClothDetailSerializer},
        summary="One cloth with its sizes and shown stock",
        tags=["catalog"],
    )
    @shop_errors(404)
    def get(self, request, cloth_id: int):
        if cloth_id > 2**63 - 1:
            raise NotFound("No such cloth.")
        key = f"detail:{cloth_id}:{selectors.cloth_version(cloth_id)}"
        data = selectors.cached(key, lambda: selectors.cloth_detail(cloth_id) or {"missing": True})
        if data.get("missing"):
            raise NotFound("No such cloth.")
        return Response(selectors.refresh_on_sale(dict(data)))


@extend_schema(exclude=True)
class ClothDetailsView(APIView):
    """Internal: names, prices and rules of many clothes / variants at once."""

    permission_classes = [IsInternal]

    def post(self, request):
        s = serializers.DetailsQuerySerializer(data=request.data)
        s.is_valid(raise_exception=True)
        return Response(
            selectors.details(variant_ids=s.validated_data["variant_ids"], cloth_ids=s.validated_data["cloth_ids"])
        )
