-- Argo CD health of an aiops.dev ManagedCluster (resource.customizations.health.aiops.dev_ManagedCluster).
--   Progressing  no status yet (the first probe has not run); a spec the operator has not seen yet;
--                Ready=False for another reason than InvalidSpec (e.g. MissingReference: the kubeconfig
--                Secret does not exist yet)
--   Healthy      Ready
--   Degraded     Degraded, Unreachable; or a spec the operator rejected (Ready=False, InvalidSpec)
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
  hs.message = "Waiting for the first probe of the cluster"
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
    hs.message = "Waiting for the first probe of the cluster"
  end
  return hs
end

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
