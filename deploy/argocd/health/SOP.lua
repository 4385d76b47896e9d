-- Argo CD health of an aiops.dev SOP (resource.customizations.health.aiops.dev_SOP). An SOP has no phase:
-- its Ready condition says whether the runbook validated.
--   Healthy      Ready=True (the steps validated)
--   Degraded     Ready=False with reason InvalidSpec (the message names the field)
--   Progressing  no Ready condition yet, Ready=Unknown or Ready=False for another reason;
--                a spec the operator has not seen yet
-- Runs after _common.lua (plain Lua 5.1, as Argo CD's gopher-lua); tests/unit/test_argocd_health.py runs it.
local waiting = "Waiting for the operator to validate the runbook"
if condition(obj.status, "Ready") == nil then
  return {status = "Progressing", message = waiting}
end
local hs, s, ready = before_phases(obj, waiting, false)
if hs ~= nil then
  return hs
end
hs = {}

if ready.status == "True" then
  hs.status = "Healthy"
  hs.message = ready.message
  return hs
end
hs.status = "Progressing"
hs.message = ready.message
return hs
