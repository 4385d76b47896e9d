-- An SOP action's undo (aiops.sops.remediation.execution) is audited as a row of its own: the same step and
-- action, later, with undo set and the reason it was undone.

ALTER TABLE sop_actions ADD COLUMN undo boolean NOT NULL DEFAULT false;
ALTER TABLE sop_actions ADD COLUMN reason text;
