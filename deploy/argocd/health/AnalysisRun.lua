-- Argo CD health of an aiops.dev AnalysisRun (resource.customizations.health.aiops.dev_AnalysisRun).
--   Progressing  Pending, Scheduling, WaitingForModel, Running; no status yet; a spec the operator has not seen yet
--   Healthy      Succeeded
--   Degraded     Failed; or a spec the operator rejected (Ready=False, InvalidSpec)
--   Unknown      a phase this script does not know (a newer operator)
-- Plain Lua 5.1 (Argo CD runs gopher-lua); tests/unit/test_argocd_health.py runs it on every phase.
local hs = {}

local function condition(status, ctype)
  if status == nil or status.conditions == nil then
    return nil
  end
  for _, c in ipairs(status.conditions) do
    if c.type == ctype then
      return c
    end
  end
  return nil
end

local function with(prefix, detail)
  if detail == nil or detail == "" then
    return prefix
  end
  return prefix .. ": " .. detail
end

local s = obj.status
local generation = obj.metadata and obj.metadata.generation
local ready = condition(s, "Ready")

if s == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to accept the run"
  return hs
end
if generation ~= nil and (s.observedGeneration == nil or s.observedGeneration < generation) then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to process generation " .. tostring(generation)
  return hs
end
if ready ~= nil and ready.status == "False" and ready.reason == "InvalidSpec" then
  hs.status = "Degraded"
  hs.message = ready.message
  return hs
end
if s.phase == nil then
  hs.status = "Progressing"
  if ready ~= nil and ready.message ~= nil and ready.message ~= "" then
    hs.message = ready.message
  else
    hs.message = "Waiting for the operator to accept the run"
  end
  return hs
end

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
