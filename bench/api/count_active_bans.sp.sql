SELECT sp_users.count_active_bans();
