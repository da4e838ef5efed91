-- The bot's conversations (mirrors postgres/0010_conversations.sql): one per session and
-- contact, with its messages in order, so a reply can send the recent history. They go
-- with their session. What the bot last did there (a reply, an error) is kept on the
-- conversation, for `show`.
CREATE TABLE conversations (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    session_name     TEXT NOT NULL
                     REFERENCES whatsapp_sessions (session_name) ON DELETE CASCADE,
    contact          TEXT NOT NULL,
    created_at       TEXT NOT NULL,
    last_message_at  TEXT NOT NULL,
    last_reply_at    TEXT,
    last_error       TEXT,
    last_error_at    TEXT,
    UNIQUE (session_name, contact)
);

CREATE TABLE messages (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    conversation_id  INTEGER NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    role             TEXT NOT NULL CHECK (role IN ('user', 'assistant')),
    body             TEXT NOT NULL,
    created_at       TEXT NOT NULL,
    wa_id            TEXT
);
CREATE INDEX messages_by_conversation ON messages (conversation_id, id);
