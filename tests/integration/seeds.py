"""The seed quiz's snippets (../shared/seeds/), verbatim apart from line breaks."""

Q1_OUTPUT = """\
from fastapi import FastAPI
from fastapi.testclient import TestClient
import pytest
import httpx

app = FastAPI()

@app.get("/hello")
async def hello():
    return {"message": "Hello, async!"}

@pytest.mark.asyncio
async def test_hello():
    async with httpx.AsyncClient(app=app, base_url="http://test") as client:
        response = await client.get("/hello")
    print(response.json())
    assert response.status_code == 200
"""

# Q2's option with the missing colon after ``async with ... as client`` (line 13).
Q2_MISSING_COLON = """\
from fastapi import FastAPI
import pytest
import httpx

app = FastAPI()

@app.get("/data")
async def get_data():
    return {"data": 123}

@pytest.mark.asyncio
async def test_data():
    async with httpx.AsyncClient(app=app, base_url="http://test") as client
        response = await client.get("/data")
    assert response.status_code == 200
"""

Q3_LOOP = """\
import asyncio
import pytest
from fastapi import FastAPI
import httpx

app = FastAPI()

@pytest.mark.asyncio
async def test_loop():
    loop = asyncio.get_event_loop()
    async with httpx.AsyncClient(app=app, base_url="http://test") as client:
        response = loop.run_until_complete(client.get("/"))
    assert response.status_code == 200
"""

Q4_COUNTER = """\
from fastapi import FastAPI
import pytest
import httpx

app = FastAPI()
counter = 0

@app.post("/increment")
async def increment():
    global counter
    counter += 1
    return {"count": counter}

@pytest.mark.asyncio
async def test_increment():
    async with httpx.AsyncClient(app=app, base_url="http://test") as client:
        await client.post("/increment")
        await client.post("/increment")
        await client.post("/increment")
"""
