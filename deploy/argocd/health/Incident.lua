-- Argo CD health of an aiops.dev Incident (resource.customizations.health.aiops.dev_Incident).
--   Progressing  New, Triaging, Analyzing, Remediating; no status yet; a spec the operator has not seen yet
--   Suspended    Remediating while the current SOP step waits for a person's approval
--   Healthy      Diagnosed, Resolved
--   Degraded     Failed, Escalated; or a spec the operator rejected (Ready=False, InvalidSpec)
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
  hs.message = "Waiting for the operator to pick up the Incident"
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
    hs.message = "Waiting for the operator to pick up the Incident"
  end
  return hs
end

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
