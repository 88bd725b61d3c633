//! The daemon's SQLite store: tokens, operations with their progress, the
//! event log, counters. One connection behind a mutex: every statement is
//! small, and the hot path (authentication, the cluster list) reads from
//! memory, not from here.
//!
//! Secrets are never stored: a token's secret is an HMAC of the token
//! under the daemon's key (`daemon.key`, 0600), derived when needed.

use std::path::Path;
use std::sync::Mutex;

use hmac::{Hmac, Mac};
use mcc_api::{
    ErrorDetail, Event, Operation, OperationEvent, OperationState, ServiceDef, TokenInfo,
};
use rusqlite::{params, Connection, OptionalExtension};
use sha2::Sha256;

use crate::Result;

/// The secret key of `token` under the daemon's `key`: 40 hex characters.
pub fn token_secret(key: &[u8; 32], token: &str) -> String {
    let mut m = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
    m.update(b"mcc-secret\n");
    m.update(token.as_bytes());
    hex::encode(m.finalize().into_bytes())[..40].to_string()
}

pub struct Store {
    db: Mutex<Connection>,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS tokens (
    token TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    read_only INTEGER NOT NULL,
    created INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS operations (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    cluster TEXT,
    state TEXT NOT NULL,
    created INTEGER NOT NULL,
    finished INTEGER,
    result TEXT,
    error TEXT,
    pid INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS operation_events (
    operation TEXT NOT NULL,
    seq INTEGER NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (operation, seq)
);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    time INTEGER NOT NULL,
    kind TEXT NOT NULL,
    cluster TEXT,
    node TEXT,
    operation TEXT,
    message TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS counters (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS services (
    cluster TEXT NOT NULL,
    name TEXT NOT NULL,
    def TEXT NOT NULL,
    PRIMARY KEY (cluster, name)
);
";

/// How many events the log keeps; older ones are dropped.
const EVENTS_KEPT: i64 = 100_000;
/// How many finished operations are kept.
const OPERATIONS_KEPT: i64 = 10_000;

fn operation_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Operation> {
    let state: String = r.get(3)?;
    let result: Option<String> = r.get(6)?;
    let error: Option<String> = r.get(7)?;
    Ok(Operation {
        id: r.get(0)?,
        kind: r.get(1)?,
        cluster: r.get(2)?,
        state: OperationState::parse(&state).unwrap_or(OperationState::Failed),
        created: r.get::<_, i64>(4)? as u64,
        finished: r.get::<_, Option<i64>>(5)?.map(|f| f as u64),
        result: result.and_then(|s| serde_json::from_str(&s).ok()),
        error: error.and_then(|s| serde_json::from_str::<ErrorDetail>(&s).ok()),
    })
}

const OPERATION_COLUMNS: &str = "id, kind, cluster, state, created, finished, result, error";

impl Store {
    pub fn open(path: &Path) -> Result<Store> {
        let db = Connection::open(path)?;
        db.pragma_update(None, "journal_mode", "WAL")?;
        db.pragma_update(None, "synchronous", "NORMAL")?;
        db.busy_timeout(std::time::Duration::from_secs(5))?;
        db.execute_batch(SCHEMA)?;
        Ok(Store { db: Mutex::new(db) })
    }

    fn db(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves the connection usable.
        self.db.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Every service defined, with its cluster.
    pub fn services(&self) -> Result<Vec<(String, ServiceDef)>> {
        let db = self.db();
        let mut st = db.prepare("SELECT cluster, def FROM services ORDER BY cluster, name")?;
        let rows = st.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
        let mut out = Vec::new();
        for row in rows {
            let (cluster, def) = row?;
            // a row this version cannot read is left alone, not fatal
            if let Ok(d) = serde_json::from_str::<ServiceDef>(&def) {
                out.push((cluster, d));
            }
        }
        Ok(out)
    }

    /// Adds or replaces a service's definition.
    pub fn put_service(&self, cluster: &str, def: &ServiceDef) -> Result<()> {
        self.db().execute(
            "INSERT OR REPLACE INTO services (cluster, name, def) VALUES (?1, ?2, ?3)",
            rusqlite::params![
                cluster,
                def.service,
                serde_json::to_string(def).expect("serializable")
            ],
        )?;
        Ok(())
    }

    pub fn remove_service(&self, cluster: &str, name: &str) -> Result<bool> {
        let n = self.db().execute(
            "DELETE FROM services WHERE cluster = ?1 AND name = ?2",
            rusqlite::params![cluster, name],
        )?;
        Ok(n > 0)
    }

    pub fn tokens(&self) -> Result<Vec<TokenInfo>> {
        let db = self.db();
        let mut st = db.prepare(
            "SELECT token, name, read_only, created FROM tokens ORDER BY created, token",
        )?;
        let rows = st.query_map([], |r| {
            Ok(TokenInfo {
                token: r.get(0)?,
                name: r.get(1)?,
                read_only: r.get::<_, i64>(2)? != 0,
                created: r.get::<_, i64>(3)? as u64,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn add_token(&self, t: &TokenInfo) -> Result<()> {
        self.db().execute(
            "INSERT INTO tokens (token, name, read_only, created) VALUES (?1, ?2, ?3, ?4)",
            params![t.token, t.name, t.read_only as i64, t.created as i64],
        )?;
        Ok(())
    }

    /// Removes a token; whether it existed.
    pub fn remove_token(&self, token: &str) -> Result<bool> {
        Ok(self
            .db()
            .execute("DELETE FROM tokens WHERE token = ?1", params![token])?
            > 0)
    }

    pub fn add_operation(&self, op: &Operation) -> Result<()> {
        self.db().execute(
            "INSERT INTO operations (id, kind, cluster, state, created, pid) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                op.id,
                op.kind,
                op.cluster,
                op.state.as_str(),
                op.created as i64,
                std::process::id()
            ],
        )?;
        Ok(())
    }

    pub fn finish_operation(&self, op: &Operation) -> Result<()> {
        let result = op.result.as_ref().map(|v| v.to_string());
        let error = op
            .error
            .as_ref()
            .map(|e| serde_json::to_string(e).expect("serializable"));
        let db = self.db();
        db.execute(
            "UPDATE operations SET state = ?2, finished = ?3, result = ?4, error = ?5 WHERE id = ?1",
            params![
                op.id,
                op.state.as_str(),
                op.finished.map(|f| f as i64),
                result,
                error
            ],
        )?;
        db.execute(
            "DELETE FROM operation_events WHERE operation IN (SELECT id FROM operations \
             WHERE state != 'running' ORDER BY created DESC LIMIT -1 OFFSET ?1)",
            params![OPERATIONS_KEPT],
        )?;
        db.execute(
            "DELETE FROM operations WHERE id IN (SELECT id FROM operations \
             WHERE state != 'running' ORDER BY created DESC LIMIT -1 OFFSET ?1)",
            params![OPERATIONS_KEPT],
        )?;
        Ok(())
    }

    pub fn operation(&self, id: &str) -> Result<Option<Operation>> {
        let db = self.db();
        Ok(db
            .query_row(
                &format!("SELECT {OPERATION_COLUMNS} FROM operations WHERE id = ?1"),
                params![id],
                operation_from_row,
            )
            .optional()?)
    }

    /// The most recent operations, newest first.
    pub fn operations(&self, limit: u32) -> Result<Vec<Operation>> {
        let db = self.db();
        let mut st = db.prepare(&format!(
            "SELECT {OPERATION_COLUMNS} FROM operations ORDER BY created DESC, rowid DESC LIMIT ?1"
        ))?;
        let rows = st.query_map(params![limit], operation_from_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Operations still marked running: after a crash, those of the
    /// daemon that died.
    pub fn running_operations(&self) -> Result<Vec<(Operation, u32)>> {
        let db = self.db();
        let mut st = db.prepare(&format!(
            "SELECT {OPERATION_COLUMNS}, pid FROM operations WHERE state = 'running'"
        ))?;
        let rows = st.query_map([], |r| Ok((operation_from_row(r)?, r.get::<_, u32>(8)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn add_operation_event(&self, op: &str, seq: u64, e: &OperationEvent) -> Result<()> {
        self.db().execute(
            "INSERT INTO operation_events (operation, seq, body) VALUES (?1, ?2, ?3)",
            params![
                op,
                seq as i64,
                serde_json::to_string(e).expect("serializable")
            ],
        )?;
        Ok(())
    }

    pub fn operation_events(&self, op: &str) -> Result<Vec<OperationEvent>> {
        let db = self.db();
        let mut st =
            db.prepare("SELECT body FROM operation_events WHERE operation = ?1 ORDER BY seq")?;
        let rows = st.query_map(params![op], |r| r.get::<_, String>(0))?;
        let mut out = Vec::new();
        for body in rows {
            if let Ok(e) = serde_json::from_str(&body?) {
                out.push(e);
            }
        }
        Ok(out)
    }

    /// Appends an event; its sequence number.
    pub fn add_event(&self, e: &Event) -> Result<u64> {
        let db = self.db();
        db.execute(
            "INSERT INTO events (time, kind, cluster, node, operation, message) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                e.time as i64,
                e.kind,
                e.cluster,
                e.node,
                e.operation,
                e.message
            ],
        )?;
        let seq = db.last_insert_rowid();
        if seq % 1000 == 0 {
            db.execute(
                "DELETE FROM events WHERE seq <= ?1",
                params![seq - EVENTS_KEPT],
            )?;
        }
        Ok(seq as u64)
    }

    /// Events after `since`, oldest first, at most `limit`.
    pub fn events_since(&self, since: u64, limit: u32) -> Result<Vec<Event>> {
        let db = self.db();
        let mut st = db.prepare(
            "SELECT seq, time, kind, cluster, node, operation, message FROM events \
             WHERE seq > ?1 ORDER BY seq LIMIT ?2",
        )?;
        let rows = st.query_map(params![since as i64, limit], |r| {
            Ok(Event {
                seq: r.get::<_, i64>(0)? as u64,
                time: r.get::<_, i64>(1)? as u64,
                kind: r.get(2)?,
                cluster: r.get(3)?,
                node: r.get(4)?,
                operation: r.get(5)?,
                message: r.get(6)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The newest event's sequence number (0: none).
    pub fn last_event(&self) -> Result<u64> {
        let db = self.db();
        let seq: Option<i64> = db.query_row("SELECT MAX(seq) FROM events", [], |r| r.get(0))?;
        Ok(seq.unwrap_or(0) as u64)
    }

    pub fn bump(&self, counter: &str, by: u64) -> Result<()> {
        self.db().execute(
            "INSERT INTO counters (name, value) VALUES (?1, ?2) \
             ON CONFLICT(name) DO UPDATE SET value = value + ?2",
            params![counter, by as i64],
        )?;
        Ok(())
    }

    pub fn counters(&self) -> Result<Vec<(String, u64)>> {
        let db = self.db();
        let mut st = db.prepare("SELECT name, value FROM counters ORDER BY name")?;
        let rows = st.query_map([], |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as u64)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(&dir.path().join("mcc.db")).unwrap();
        (dir, s)
    }

    #[test]
    fn secrets_are_derived_not_stored() {
        let key = [7u8; 32];
        let a = token_secret(&key, "mcc_a");
        assert_eq!(a.len(), 40);
        assert_eq!(a, token_secret(&key, "mcc_a"));
        assert_ne!(a, token_secret(&key, "mcc_b"));
        assert_ne!(a, token_secret(&[8u8; 32], "mcc_a"));
    }

    #[test]
    fn tokens_round_trip() {
        let (_d, s) = store();
        let t = TokenInfo {
            token: "mcc_x".into(),
            name: "ci".into(),
            read_only: true,
            created: 5,
        };
        s.add_token(&t).unwrap();
        assert_eq!(s.tokens().unwrap()[0].name, "ci");
        assert!(s.tokens().unwrap()[0].read_only);
        assert!(s.remove_token("mcc_x").unwrap());
        assert!(!s.remove_token("mcc_x").unwrap());
    }

    #[test]
    fn operations_and_events_persist() {
        let (_d, s) = store();
        let mut op = Operation {
            id: "op1".into(),
            kind: "create".into(),
            cluster: Some("lab".into()),
            state: OperationState::Running,
            created: 1,
            finished: None,
            result: None,
            error: None,
        };
        s.add_operation(&op).unwrap();
        s.add_operation_event(
            "op1",
            0,
            &OperationEvent::Note {
                message: "hi".into(),
            },
        )
        .unwrap();
        assert_eq!(s.running_operations().unwrap().len(), 1);
        op.state = OperationState::Failed;
        op.finished = Some(2);
        op.error = Some(ErrorDetail::new("failed", "boom"));
        s.finish_operation(&op).unwrap();
        let back = s.operation("op1").unwrap().unwrap();
        assert_eq!(back.state, OperationState::Failed);
        assert_eq!(back.error.unwrap().message, "boom");
        assert!(s.running_operations().unwrap().is_empty());
        assert_eq!(s.operation_events("op1").unwrap().len(), 1);
        let e = Event {
            seq: 0,
            time: 3,
            kind: "cluster".into(),
            cluster: Some("lab".into()),
            node: None,
            operation: None,
            message: "created".into(),
        };
        let a = s.add_event(&e).unwrap();
        let b = s.add_event(&e).unwrap();
        assert!(b > a);
        assert_eq!(s.events_since(a, 10).unwrap().len(), 1);
        assert_eq!(s.last_event().unwrap(), b);
        s.bump("requests", 2).unwrap();
        s.bump("requests", 3).unwrap();
        assert_eq!(s.counters().unwrap(), vec![("requests".to_string(), 5)]);
    }
}
