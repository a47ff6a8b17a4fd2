// A web request flow against sp_users, with node-postgres. Connection settings come from the
// usual PG* environment variables (scripts/pgdev env prints them for the private cluster).
'use strict';
const { Client } = require('pg');

// SPEC SQLSTATEs an application branches on.
const UNIQUE_VIOLATION = '23505';
const NOT_FOUND = 'P0002';
const BAD_ADDRESS = '22P02';

async function main() {
  const db = new Client();
  await db.connect();
  const one = async (sql, params) => (await db.query(sql, params)).rows[0];
  try {
    const clientIp = '::ffff:198.51.100.23';
    const abusiveIp = '203.0.113.66';

    // 1. Every request: refuse banned clients first (the hot path).
    const { is_banned: banned } = await one('SELECT sp_users.is_banned($1)', [clientIp]);
    console.log(`client banned: ${banned}`);

    // 2. An anonymous visitor, identified by a device fingerprint; the same fingerprint always
    //    yields the same user, also when two requests race.
    const anon = await one('SELECT * FROM sp_users.create_anonymous($1)', ['node-demo-device']);
    console.log(`anonymous user: ${anon.name} roles=${anon.roles}`);
    const session = await one('SELECT * FROM sp_users.start_session($1, NULL, $2, $3)', [anon.id, clientIp, 'node-example/1.0']);
    console.log(`session for ${session.ip_address}: ${session.user_type}`);

    // 3. An abusive address gets banned, with escalation for repeat offenders.
    const ban = await one("SELECT * FROM sp_users.ban_ip($1, 'credential stuffing', '1 hour', 'node-example', escalate => true)", [abusiveIp]);
    console.log(`banned ${ban.ip_address} (ban #${ban.ban_count})`);
    console.log(`abusive banned: ${(await one('SELECT sp_users.is_banned($1)', [abusiveIp])).is_banned}`);

    // 4. The visitor signs up. A taken email is SQLSTATE 23505: log in instead.
    let account;
    try {
      account = await one('SELECT * FROM sp_users.create_user($1, $2, $3)', ['node_demo', 'Node.Demo@Example.com', 'Node Demo']);
      console.log(`registered ${account.email}`);
    } catch (err) {
      if (err.code !== UNIQUE_VIOLATION) throw err;
      account = await one('SELECT * FROM sp_users.find_by_email($1)', ['node.demo@example.com']);
      console.log(`email taken (${err.code}): logged in as ${account.email}`);
    }

    // 5. The anonymous visitor's sessions and data follow the account.
    const merged = await one('SELECT * FROM sp_users.promote_anonymous($1, $2)', [anon.id, account.id]);
    console.log(`promoted: ${merged.sessions} session(s) moved, ${merged.total_rows} row(s) in total`);

    // 6. Errors by SQLSTATE, not by message text.
    for (const [sql, params, expected] of [
      ['SELECT sp_users.is_banned($1)', ['not-an-ip'], BAD_ADDRESS],
      ['SELECT * FROM sp_users.get_roles($1)', ['00000000-0000-0000-0000-000000000000'], NOT_FOUND],
    ]) {
      try { await db.query(sql, params); console.log('unexpected success'); }
      catch (err) { console.log(`error ${err.code}${err.code === expected ? ' as expected' : ' UNEXPECTED'}`); }
    }

    const stats = await one('SELECT * FROM sp_users.get_stats()');
    console.log(`stats: total=${stats.total} anonymous=${stats.anonymous}`);
  } finally {
    await db.end();
  }
}

main().catch((err) => { console.error(err); process.exit(1); });
