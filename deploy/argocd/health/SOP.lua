-- Argo CD health of an aiops.dev SOP (resource.customizations.health.aiops.dev_SOP). An SOP has no phase:
-- its Ready condition says whether the runbook validated.
--   Healthy      Ready=True (the steps validated)
--   Degraded     Ready=False with reason InvalidSpec (the message names the field)
--   Progressing  no Ready condition yet, Ready=Unknown or Ready=False for another reason;
--                a spec the operator has not seen yet
-- Plain Lua 5.1 (Argo CD runs gopher-lua); tests/unit/test_argocd_health.py runs it.
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

local s = obj.status
local generation = obj.metadata and obj.metadata.generation
local ready = condition(s, "Ready")

if s == nil or ready == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to validate the runbook"
  return hs
end
if generation ~= nil and (s.observedGeneration == nil or s.observedGeneration < generation) then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to process generation " .. tostring(generation)
  return hs
end
if ready.status == "False" and ready.reason == "InvalidSpec" then
  hs.status = "Degraded"
  hs.message = ready.message
  return hs
end
if ready.status == "True" then
  hs.status = "Healthy"
  hs.message = ready.message
  return hs
end
hs.status = "Progressing"
hs.message = ready.message
return hs
