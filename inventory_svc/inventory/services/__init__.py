"""Every change of stock: register, restock, correct, reserve, release, sell, return.

Each function is the one path for its use case (views, consumers, commands and the admin
call it). The order of Redis and PostgreSQL is chosen so a crash between them can only
leave Redis *under*-counting (a unit briefly unsellable, until ``repair_gate`` runs), and
PostgreSQL's guarded updates refuse any unit that is not there: no oversell, ever.

One module per job; callers import from here:

- ``stock``: a variant's total (register, restock, correct);
- ``reservations``: reserving an order's units, and giving back what a failed reserve took;
- ``release``: giving units back (release, return after a refund);
- ``selling``: selling a paid order's units, also after its reservation was released;
- ``expiry``: releasing reservations past their deadline;
- ``repair``: finishing gate steps a crash left undone;
- underneath: ``counters`` (the guarded updates, the only place stock moves), ``ledger``
  (the movement rows) and ``gate_steps`` (calling the gate around a PostgreSQL change).
"""

from inventory.services.expiry import release_expired_reservations
from inventory.services.release import release_reservation, return_reservation
from inventory.services.repair import repair_gate
from inventory.services.reservations import reserve_stock
from inventory.services.selling import report_unsellable, sell_reservation
from inventory.services.stock import correct_stock, register_stock, restock

__all__ = [
    "correct_stock",
    "register_stock",
    "release_expired_reservations",
    "release_reservation",
    "repair_gate",
    "report_unsellable",
    "reserve_stock",
    "restock",
    "return_reservation",
    "sell_reservation",
]
