-- Argo CD health of an aiops.dev Incident (resource.customizations.health.aiops.dev_Incident).
--   Progressing  New, Triaging, Analyzing, Remediating; no status yet; a spec the operator has not seen yet
--   Suspended    Remediating while the current SOP step waits for a person's approval
--   Healthy      Diagnosed, Resolved
--   Degraded     Failed, Escalated; or a spec the operator rejected (Ready=False, InvalidSpec)
--   Unknown      a phase this script does not know (a newer operator)
-- Runs after _common.lua (plain Lua 5.1, as Argo CD's gopher-lua); tests/unit/test_argocd_health.py runs it on every phase.
local hs, s, ready = before_phases(obj, "Waiting for the operator to pick up the Incident", true)
if hs ~= nil then
  return hs
end
hs = {}

local phase = s.phase
local d = s.diagnosis
local rootCause = d and d.rootCause

if phase == "New" or phase == "Triaging" or phase == "Analyzing" then
  hs.status = "Progressing"
  hs.message = phase
  if ready ~= nil and ready.message ~= nil and ready.message ~= "" then
    hs.message = with(phase, ready.message)
  end
  return hs
end

if phase == "Remediating" then
  local sop = s.sop
  if sop ~= nil and sop.current ~= nil and sop.steps ~= nil then
    for _, step in ipairs(sop.steps) do
      if step.id == sop.current and step.state == "AwaitingApproval" then
        hs.status = "Suspended"
        hs.message = "SOP " .. tostring(sop.name) .. ": step " .. step.id .. " waits for an approval in spec.approvals"
        return hs
      end
    end
    hs.status = "Progressing"
    hs.message = "Remediating: SOP " .. tostring(sop.name) .. ", step " .. tostring(sop.current)
    return hs
  end
  hs.status = "Progressing"
  hs.message = "Remediating"
  return hs
end

if phase == "Diagnosed" or phase == "Resolved" then
  hs.status = "Healthy"
  hs.message = with(phase, rootCause)
  if d ~= nil and d.confidence ~= nil then
    hs.message = hs.message .. " (confidence " .. tostring(d.confidence)
    if d.executionStatus ~= nil and d.executionStatus ~= "COMPLETED" then
      hs.message = hs.message .. ", " .. d.executionStatus
    end
    hs.message = hs.message .. ")"
  end
  return hs
end

if phase == "Failed" then
  hs.status = "Degraded"
  local diagnosed = condition(s, "Diagnosed")
  if ready ~= nil and ready.status == "False" and ready.message ~= nil and ready.message ~= "" then
    hs.message = with(phase, ready.message)
  elseif diagnosed ~= nil and diagnosed.status == "False" and diagnosed.message ~= nil and diagnosed.message ~= "" then
    hs.message = with(phase, diagnosed.message)
  else
    hs.message = with(phase, rootCause)
  end
  return hs
end

if phase == "Escalated" then
  hs.status = "Degraded"
  hs.message = with(phase, rootCause)
  if s.sop ~= nil and s.sop.name ~= nil then
    hs.message = hs.message .. " (SOP " .. s.sop.name
    if s.sop.current ~= nil then
      hs.message = hs.message .. ", step " .. s.sop.current
    end
    hs.message = hs.message .. ")"
  end
  return hs
end

hs.status = "Unknown"
hs.message = "Unknown phase " .. tostring(phase)
return hs
