"""The catalog's HTTP API: public list and detail (cached), internal batch details."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from catalog import selectors, serializers
from shared.errors import NotFound
from shared.internal_auth import IsInternal
from shared.openapi import shop_errors
from shared.pagination import PageNumberPagination


class ClothPagination(PageNumberPagination):
    name_first_page = True


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
        # Validated above, so the paginator reads the same page and page_size; past the last page is a 404.
        paginator = ClothPagination()
        page = paginator.paginate_queryset(selectors.clothes(**filters), request, view=self)
        return paginator.get_paginated_response([selectors.list_item(c) for c in page])


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
        data = selectors.cloth_detail(cloth_id)
        if data is None:
            raise NotFound("No such cloth.")
        return Response(data)


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
