-- One database per service.
CREATE DATABASE shop_member;
CREATE DATABASE shop_catalog;
CREATE DATABASE shop_order;
CREATE DATABASE shop_inventory;
CREATE DATABASE shop_payment;
