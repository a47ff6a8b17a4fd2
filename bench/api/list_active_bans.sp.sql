SELECT * FROM sp_users.list_active_bans();
