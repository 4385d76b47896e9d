-- Argo CD health of an aiops.dev ManagedCluster (resource.customizations.health.aiops.dev_ManagedCluster).
--   Progressing  no status yet (the first probe has not run); a spec the operator has not seen yet;
--                Ready=False for another reason than InvalidSpec (e.g. MissingReference: the kubeconfig
--                Secret does not exist yet)
--   Healthy      Ready
--   Degraded     Degraded, Unreachable; or a spec the operator rejected (Ready=False, InvalidSpec)
--   Unknown      a phase this script does not know (a newer operator)
-- Runs after _common.lua (plain Lua 5.1, as Argo CD's gopher-lua); tests/unit/test_argocd_health.py runs it on every phase.
local hs, s, ready = before_phases(obj, "Waiting for the first probe of the cluster", true)
if hs ~= nil then
  return hs
end
hs = {}

local phase = s.phase
local detail = ready and ready.message
if phase == "Ready" then
  hs.status = "Healthy"
  hs.message = with(phase, detail)
  return hs
end
if phase == "Degraded" or phase == "Unreachable" then
  hs.status = "Degraded"
  hs.message = with(phase, detail)
  return hs
end

hs.status = "Unknown"
hs.message = "Unknown phase " .. tostring(phase)
return hs
