-- pandoc filter for the HTML manual. Pages link to each other as
-- "mote_await.3.md" (and the guide as "man/mote_await.3.md"), which works
-- when the Markdown is read on a code forge; in build/docs/html every page
-- is "mote_await.html" side by side with "guide.html". A page's title
-- block, "MOTE_AWAIT(3) mote | mote manual", becomes "mote_await(3)".

function Link(el)
  local t = el.target
  local file, anchor = t:match("^([^:#]*)%.md(#?.*)$")
  if file then
    file = file:gsub("^.*/", ""):gsub("%.3$", "")
    el.target = file .. ".html" .. anchor
  end
  return el
end

function Meta(meta)
  if meta.title then
    local title = pandoc.utils.stringify(meta.title)
    local name, sec = title:match("^(%S+)%((%d)%)")
    if name then
      meta.title = name:lower() .. "(" .. sec .. ")"
    end
  end
  return meta
end
