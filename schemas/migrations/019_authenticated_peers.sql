-- Trust boundary (security.curve): every message arrives over a CURVE connection whose key the
-- daemon's ZAP handler looked up in security.peers_file, so the sender's name is known, not
-- claimed. It is recorded where an operator audits: the task updates a dispatcher sent (and the
-- task history they caused) and the dead letters (an event outside its gateway's scope, a peer
-- using a socket its role does not allow). NULL where the message came without CURVE.
ALTER TABLE liandong.task_updates ADD COLUMN peer text;
COMMENT ON COLUMN liandong.task_updates.peer IS 'Authenticated sender (name in security.peers_file, from its CURVE key); NULL without security.curve. actor is what the message claims.';
ALTER TABLE liandong.task_history ADD COLUMN peer text;
COMMENT ON COLUMN liandong.task_history.peer IS 'Authenticated peer whose task update caused this step (see task_updates.peer); NULL for steps of the daemon itself or without security.curve.';
ALTER TABLE liandong.rejected_messages ADD COLUMN peer text;
COMMENT ON COLUMN liandong.rejected_messages.peer IS 'Authenticated sender (name in security.peers_file); NULL without security.curve.';
