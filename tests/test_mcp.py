"""`digestqa mcp` end to end: the official MCP SDK's own client starts the server over stdio and calls each tool."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import anyio
import pytest

REPO = Path(__file__).resolve().parents[1]


def _params(index: str, mode_env: dict | None = None):
    from mcp.client.stdio import StdioServerParameters

    env = {"PYTHONPATH": str(REPO), "DIGESTQA_INDEX": index, "HF_HUB_OFFLINE": "1", "ORT_DISABLE_TELEMETRY": "1",
           "ANONYMIZED_TELEMETRY": "False", **(mode_env or {})}
    return StdioServerParameters(command=sys.executable, args=["-m", "rag.cli", "mcp"], env=env, cwd=str(REPO))


async def _session(index: str, mode: str):
    from mcp import Client

    return Client(_params(index), mode=mode, read_timeout_seconds=300)


def _data(result) -> dict:
    assert not result.is_error, result.content
    text = json.loads(result.content[0].text)
    if result.structured_content is not None:  # both forms carry the same object
        assert result.structured_content == text or result.structured_content.get("result") == text
    return text


@pytest.mark.parametrize("mode", ["legacy", "auto"])
def test_mcp_tools_over_stdio(sample_settings, mode):
    from rag import api

    api.add_watch("semantic IDs", sample_settings)

    async def main():
        async with await _session(sample_settings.index_dir, mode) as client:
            tools = {t.name: t for t in (await client.list_tools()).tools}
            assert set(tools) == {"search_papers", "ask", "get_paper", "whats_new"}
            props = tools["search_papers"].input_schema["properties"]
            assert {"query", "since", "until", "category", "author", "top_k"} <= set(props)

            found = _data(await client.call_tool("search_papers", {"query": "RQ-VAE semantic IDs", "top_k": 5}))
            assert 1 <= len(found["papers"]) <= 5
            assert "2512.02474" in {p["arxiv_id"] for p in found["papers"]}
            assert all(p["passages"] and p["url"] in (None, f"https://arxiv.org/abs/{p['arxiv_id']}")
                       for p in found["papers"])
            dated = _data(await client.call_tool("search_papers", {"query": "recommendation", "since": "2030-01-01"}))
            assert dated["papers"] == []

            ans = _data(await client.call_tool("ask", {"question": "哪篇论文在抖音搜索部署了？"}))
            assert not ans["abstained"] and "2511.10962" in {c["arxiv_id"] for c in ans["citations"]}
            assert all(c["passage"] and c["evidence"] for c in ans["citations"])
            no = _data(await client.call_tool("ask", {"question": "What BLEU score does Q-BERT4Rec get on WMT14?"}))
            assert no["abstained"] and no["citations"] == []

            paper = _data(await client.call_tool("get_paper", {"paper_id": "arXiv:2511.10962v2"}))
            assert paper["arxiv_id"] == "2511.10962" and paper["title"].startswith("LEMUR")
            missing = await client.call_tool("get_paper", {"paper_id": "9999.99999"})
            assert missing.is_error and "9999.99999" in missing.content[0].text

            new = _data(await client.call_tool("whats_new", {"since": "2000-01-01"}))
            matches = new["watches"]["semantic IDs"]
            assert "2508.15281" in {m["arxiv_id"] for m in matches} and all(m["why"] and m["sentence"] for m in matches)
            bad = await client.call_tool("whats_new", {"watch": "x", "since": "yesterday"})
            assert bad.is_error and "YYYY-MM-DD" in bad.content[0].text

    try:
        anyio.run(main)
    finally:
        api.remove_watch("semantic IDs", sample_settings)  # the sample index is shared by the session


def test_readme_has_the_mcp_client_config():
    text = (REPO / "README.md").read_text(encoding="utf-8")
    block = text.split("### MCP server", 1)[1].split("```json", 1)[1].split("```", 1)[0]
    cfg = json.loads(block)
    server = cfg["mcpServers"]["digestqa"]
    assert server["command"] == "digestqa" and server["args"][-1] == "mcp"
