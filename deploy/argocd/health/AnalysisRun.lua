-- Argo CD health of an aiops.dev AnalysisRun (resource.customizations.health.aiops.dev_AnalysisRun).
--   Progressing  Pending, Scheduling, WaitingForModel, Running; no status yet; a spec the operator has not seen yet
--   Healthy      Succeeded
--   Degraded     Failed; or a spec the operator rejected (Ready=False, InvalidSpec)
--   Unknown      a phase this script does not know (a newer operator)
-- Runs after _common.lua (plain Lua 5.1, as Argo CD's gopher-lua); tests/unit/test_argocd_health.py runs it on every phase.
local hs, s, ready = before_phases(obj, "Waiting for the operator to accept the run", true)
if hs ~= nil then
  return hs
end
hs = {}

local phase = s.phase
if phase == "Pending" or phase == "Scheduling" or phase == "WaitingForModel" or phase == "Running" then
  hs.status = "Progressing"
  hs.message = phase
  if ready ~= nil and ready.message ~= nil and ready.message ~= "" then
    hs.message = with(phase, ready.message)
  end
  return hs
end

if phase == "Succeeded" then
  hs.status = "Healthy"
  hs.message = phase
  if s.model ~= nil then
    hs.message = hs.message .. " with " .. s.model
  end
  if s.durationSeconds ~= nil then
    hs.message = hs.message .. " in " .. string.format("%.1f", s.durationSeconds) .. "s"
  end
  return hs
end

if phase == "Failed" then
  hs.status = "Degraded"
  if s.error ~= nil and s.error ~= "" then
    hs.message = with(phase, s.error)
  elseif ready ~= nil and ready.status == "False" then
    hs.message = with(phase, ready.message)
  else
    hs.message = phase
  end
  return hs
end

hs.status = "Unknown"
hs.message = "Unknown phase " .. tostring(phase)
return hs
