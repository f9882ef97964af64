-- A saved segment's description (`touchpoint segments create NAME EXPR
-- --description TEXT`, `POST /api/segments`), for people reading the list.
ALTER TABLE segments ADD COLUMN description TEXT;
