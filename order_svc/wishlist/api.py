"""HTTP views of the wishlist: one's own only (the member comes from the gateway)."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from shared.openapi import shop_errors
from wishlist import selectors, services
from wishlist.serializers import ItemInSerializer, ItemSerializer, VariantIdSerializer, WishlistSerializer

VARIANT_ID_QUERY = OpenApiParameter(
    "variant_id",
    {"type": "integer", "minimum": 1, "maximum": 2**63 - 1},
    OpenApiParameter.QUERY,
    required=False,
    description="The variant to remove; a JSON body {variant_id} works too, as in the original API.",
)


class WishlistView(APIView):
    @extend_schema(responses={200: WishlistSerializer}, summary="One's own wishlist")
    def get(self, request: Request) -> Response:
        items = selectors.member_items(member_id=request.user.member_id)
        return Response(WishlistSerializer({"items": items}).data)


class AddItemView(APIView):
    @extend_schema(request=ItemInSerializer, responses={201: ItemSerializer}, summary="Add an item to the wishlist")
    def post(self, request: Request) -> Response:
        body = ItemInSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        item = services.add_item(member_id=request.user.member_id, **body.validated_data)
        return Response(ItemSerializer(item).data, status=status.HTTP_201_CREATED)


class UpdateItemView(APIView):
    @extend_schema(request=ItemInSerializer, responses={200: ItemSerializer}, summary="Change an item's quantity")
    @shop_errors(404)
    def put(self, request: Request) -> Response:
        body = ItemInSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        item = services.update_item(member_id=request.user.member_id, **body.validated_data)
        return Response(ItemSerializer(item).data)


class DeleteItemView(APIView):
    @extend_schema(
        parameters=[VARIANT_ID_QUERY],
        responses={204: None},
        summary="Remove an item from the wishlist (the variant_id in the query, or in a JSON body)",
    )
    @shop_errors(400, 404)
    def delete(self, request: Request) -> Response:
        # A body on DELETE is what the original API takes; a query parameter works too.
        data = request.data if request.data else request.query_params
        body = VariantIdSerializer(data=data)
        body.is_valid(raise_exception=True)
        services.remove_item(member_id=request.user.member_id, **body.validated_data)
        return Response(status=status.HTTP_204_NO_CONTENT)
