"""A synthetic organisation for benchmarks: `build_org(db, tenant, n_people, ...)`.

Fast bulk inserts with SQLAlchemy Core (no ORM objects): people in departments and
sites, `n_skills` distinct skills (real ones first, then realistic combinations) with
about five per person on a skewed popularity curve, a few channels (one private) and
one piece of hashtag evidence per person. Deterministic for a given seed.
"""
from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone
from typing import Iterable, Iterator, Sequence

from sqlalchemy import insert, select

from bot.text import norm_key, topic_key
from store.db import Database
from store.models.core import Conversation, ConversationMember, Evidence, Person, PersonSkill, Skill, Workspace

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=timezone.utc)
CHUNK = 10000
SKILLS_PER_PERSON = 5
BASE_SKILLS = (
    "kubernetes", "python", "pricing", "appel d'offres", "négociation", "aéronautique", "RGPD", "terraform",
    "postgresql", "machine learning", "react", "sécurité", "aws", "java", "SEO", "communication", "événementiel",
    "analytics", "copywriting", "zendesk", "formation", "onboarding client", "recrutement", "droit du travail",
    "prospection", "salesforce", "CRM", "gestion de projet", "data engineering", "product management",
)
WORDS = (
    "cloud", "data", "sécurité", "réseau", "marketing", "vente", "achats", "finance", "audit", "conformité",
    "logistique", "supply chain", "design", "ux", "mobile", "backend", "frontend", "devops", "qualité", "test",
    "automatisation", "stratégie", "innovation", "juridique", "fiscalité", "paie", "comptabilité", "contrôle de gestion",
    "relation client", "support", "formation", "management", "leadership", "négociation", "pricing", "export",
    "industrie", "énergie", "santé", "banque", "assurance", "retail", "ferroviaire", "automobile", "spatial",
    "défense", "télécom", "robotique", "électronique", "mécanique", "chimie", "biotech", "pharma", "agroalimentaire",
    "immobilier", "btp", "architecture", "urbanisme", "transport", "maritime", "aviation", "tourisme", "luxe",
    "mode", "média", "édition", "jeux vidéo", "éducation", "recherche", "statistiques", "optimisation", "simulation",
    "vision", "langage", "recommandation", "prévision", "risque", "fraude", "crypto", "paiement", "api",
    "microservices", "observabilité", "sre", "linux", "windows", "réseaux sociaux", "contenu", "vidéo", "podcast",
    "événements", "partenariats", "alliances", "grands comptes", "pme", "startups", "secteur public", "international",
)
QUALIFIERS = (
    "avancé", "appliqué", "industriel", "B2B", "B2C", "temps réel", "embarqué", "distribué", "open source",
    "réglementaire", "opérationnel", "stratégique", "analytique", "international", "durable", "agile",
)
DEPARTMENTS = ("Sales", "Engineering", "Marketing", "Support", "HR", "Finance", "Operations", "Legal")
SITES = (("Paris", "Europe/Paris"), ("Lyon", "Europe/Paris"), ("Toulouse", "Europe/Paris"),
         ("Montréal", "America/Montreal"), ("London", "Europe/London"), ("New York", "America/New_York"))
FIRST = ("Sophie", "Thomas", "Camille", "Lucas", "Emma", "Hugo", "Léa", "Nathan", "Chloé", "Louis", "Inès",
         "James", "Olivia", "William", "Priya", "Karim", "Fatou", "Élodie", "Rémi", "Zoé")
LAST = ("Martin", "Bernard", "Dubois", "Durand", "Leroy", "Moreau", "Smith", "Jones", "Tremblay", "Gagnon",
        "Roux", "Fournier", "Garcia", "Nguyen", "Diallo", "Haddad")


def skill_names(n: int, rng: random.Random) -> list[str]:
    """`n` skill names, distinct once normalised: the real ones first, then combinations."""
    names: list[str] = []
    seen: set[str] = set()

    def add(name: str) -> None:
        key = norm_key(name)
        if key and key not in seen and len(names) < n:
            seen.add(key)
            names.append(name)

    for name in BASE_SKILLS:
        add(name)
    for a in WORDS:
        for b in WORDS:
            if a != b:
                add(f"{a} {b}")
        for q in QUALIFIERS:
            add(f"{a} {q}")
    attempts = 0
    while len(names) < n and attempts < n * 20:
        attempts += 1
        add(f"{rng.choice(WORDS)} {rng.choice(WORDS)} {rng.choice(QUALIFIERS)}")
    if len(names) < n:
        raise ValueError(f"cannot make {n} distinct skill names")
    rng.shuffle(names)
    names.sort(key=lambda s: s not in BASE_SKILLS)  # the real skills stay the most popular
    return names


def _chunks(rows: Iterable[dict], size: int = CHUNK) -> Iterator[list[dict]]:
    batch: list[dict] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _insert(conn, table, rows: Iterable[dict]) -> None:  # noqa: ANN001 - a Core connection and table
    for batch in _chunks(rows):
        conn.execute(insert(table), batch)


def _popular_index(rng: random.Random, n: int) -> int:
    """A skewed pick in [0, n): a few skills are very common, most are rare."""
    return min(n - 1, int(n * rng.random() ** 3))


def build_org(db: Database, tenant: str, n_people: int, n_skills: int = 20000, platform: str = "bench", seed: int = 1) -> None:
    """Insert a synthetic organisation into `tenant` (which must not hold people yet)."""
    rng = random.Random(seed)
    names = skill_names(n_skills, rng)
    people_t, skills_t = Person.__table__, Skill.__table__
    with db.engine.begin() as conn:
        if conn.execute(select(Workspace.id).where(Workspace.id == tenant)).first() is None:
            conn.execute(insert(Workspace.__table__), [{"id": tenant, "platform": platform, "name": f"bench {n_people}",
                                                        "default_locale": "en", "expertise_version": 0, "created_at": NOW}])

        def people_rows() -> Iterator[dict]:
            for i in range(n_people):
                site, tz = SITES[i % len(SITES)]
                first, last = FIRST[i % len(FIRST)], LAST[(i // len(FIRST)) % len(LAST)]
                yield {"tenant": tenant, "external_id": f"u{i}", "handle": f"user{i}", "display_name": f"{first} {last} {i}",
                       "email": f"user{i}@bench.example", "title": "Specialist", "department": DEPARTMENTS[i % len(DEPARTMENTS)],
                       "site": site, "tz": tz, "languages": "fr, en" if i % 2 else "en", "locale": None, "avatar_url": "",
                       "is_bot": False, "active": i % 200 != 7, "accepts_mentions": True, "profile_synced_at": None,
                       "created_at": NOW, "updated_at": NOW}

        _insert(conn, people_t, people_rows())
        _insert(conn, skills_t, ({"tenant": tenant, "name": name, "key": norm_key(name)} for name in names))
        person_ids = [pid for (pid,) in conn.execute(
            select(people_t.c.id).where(people_t.c.tenant == tenant).order_by(people_t.c.id))]
        skill_ids = {key: sid for sid, key in conn.execute(select(skills_t.c.id, skills_t.c.key).where(skills_t.c.tenant == tenant))}
        ordered_ids = [skill_ids[norm_key(name)] for name in names]

        picks: list[tuple[int, int]] = []

        def link_rows() -> Iterator[dict]:
            for pid in person_ids:
                chosen: set[int] = set()
                while len(chosen) < SKILLS_PER_PERSON:
                    chosen.add(_popular_index(rng, len(names)) if rng.random() < 0.6 else rng.randrange(len(names)))
                for index in chosen:
                    confirmed = NOW - timedelta(days=rng.randrange(0, 730), seconds=rng.randrange(86400))
                    if rng.random() < 0.2:
                        picks.append((pid, index))
                    yield {"tenant": tenant, "person_id": pid, "skill_id": ordered_ids[index], "source": "declared",
                           "created_at": confirmed, "confirmed_at": confirmed, "reminded_at": None}

        _insert(conn, PersonSkill.__table__, link_rows())
        channels = [{"tenant": tenant, "external_id": f"c{i}", "name": f"channel-{i}", "kind": "private" if i == 0 else "public",
                     "language": None, "tz": "Europe/Paris", "bot_member": True, "indexing": True, "member_count": 0,
                     "created_at": NOW} for i in range(5)]
        _insert(conn, Conversation.__table__, channels)
        conv_ids: Sequence[int] = [cid for (cid,) in conn.execute(
            select(Conversation.__table__.c.id).where(Conversation.__table__.c.tenant == tenant).order_by(Conversation.__table__.c.id))]
        _insert(conn, ConversationMember.__table__, ({"tenant": tenant, "conversation_id": conv_ids[0], "person_id": pid,
                                                      "joined_at": NOW} for pid in person_ids[:50]))

        def evidence_rows() -> Iterator[dict]:
            for n, (pid, index) in enumerate(picks):
                label = names[index]
                yield {"tenant": tenant, "person_id": pid, "topic_key": topic_key(label), "topic_label": label,
                       "kind": ("hashtag", "help", "kudos", "thanked", "mentioned")[n % 5], "weight": 1.0,
                       "occurred_at": NOW - timedelta(days=rng.randrange(0, 500)), "source_ref": f"bench-{n}",
                       "conversation_id": conv_ids[n % len(conv_ids)], "snippet": ""}

        _insert(conn, Evidence.__table__, evidence_rows())
    # A live database has planner statistics (the store.analyze job keeps them); give the
    # freshly bulk-loaded one the same, or SQLite plans every query as if tables were empty.
    db.analyze()
