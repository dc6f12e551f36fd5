-- The admin who chose an account's first password when creating it (null: the account chose
-- its own, signs in elsewhere, or was made from the command line). An admin associating such
-- an account with an experiment could read its measures through it: the server flags that.
alter table users add column password_set_by text;
