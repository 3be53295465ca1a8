"""The demo organisation the console starts with: about 60 people, five departments,
several sites and time zones, French and English names, skills and a few channels
with past messages. Deterministic, and seeded only once per database."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

DEMO_TENANT = "console:demo"
DEMO_ADMIN = "camille"

SITES = {
    "Paris": "Europe/Paris",
    "Lyon": "Europe/Paris",
    "Toulouse": "Europe/Paris",
    "Montréal": "America/Montreal",
    "London": "Europe/London",
}

DEPARTMENTS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "Sales": (
        ("Account Executive", "Key Account Manager", "Sales Director", "Ingénieure commerciale", "Business Developer"),
        ("négociation", "appel d'offres", "pricing", "aéronautique", "CRM", "prospection", "salesforce", "RGPD"),
    ),
    "Engineering": (
        ("Software Engineer", "SRE", "Tech Lead", "Développeuse back-end", "Data Engineer"),
        ("kubernetes", "python", "terraform", "postgresql", "machine learning", "react", "sécurité", "aws", "java"),
    ),
    "Marketing": (
        ("Product Marketing Manager", "Chargé de communication", "Growth Marketer", "Brand Manager"),
        ("SEO", "pricing", "communication", "événementiel", "analytics", "copywriting", "LinkedIn"),
    ),
    "Support": (
        ("Support Engineer", "Customer Success Manager", "Responsable support", "Technical Account Manager"),
        ("zendesk", "python", "kubernetes", "formation", "RGPD", "onboarding client", "SQL"),
    ),
    "HR": (
        ("HR Business Partner", "Talent Acquisition", "Responsable formation", "Juriste social"),
        ("recrutement", "droit du travail", "formation", "RGPD", "onboarding", "QVT"),
    ),
}

FIRST_NAMES = (
    "Sophie", "Camille", "Alice", "Thomas", "Julien", "Chloé", "Lucas", "Emma", "Hugo", "Léa",
    "Nathan", "Manon", "Louis", "Inès", "Gabriel", "Sarah", "Raphaël", "Jade", "Arthur", "Zoé",
    "James", "Olivia", "William", "Emily", "Oliver", "Charlotte", "Noah", "Amelia", "Ethan", "Grace",
    "Mathis", "Clara", "Théo", "Anaïs", "Maxime", "Pauline", "Antoine", "Élodie", "Nicolas", "Margaux",
    "Benoît", "Agathe", "Rémi", "Hélène", "Quentin", "Laura", "Victor", "Justine", "Samuel", "Noémie",
    "Daniel", "Priya", "Mohamed", "Fatou", "Karim", "Yasmine", "Marc", "Isabelle", "Kevin", "Amandine",
)
LAST_NAMES = (
    "Martin", "Bernard", "Dubois", "Thomas", "Robert", "Richard", "Petit", "Durand", "Leroy", "Moreau",
    "Simon", "Laurent", "Lefebvre", "Michel", "Garcia", "David", "Bertrand", "Roux", "Vincent", "Fournier",
    "Smith", "Jones", "Taylor", "Brown", "Wilson", "Evans", "Walker", "Tremblay", "Gagnon", "Roy",
)

CHANNELS: tuple[tuple[str, str, str], ...] = (
    ("general", "public", "en"),
    ("sales", "public", "fr"),
    ("engineering", "public", "en"),
    ("marketing", "public", "fr"),
    ("support", "public", "en"),
    ("ideas", "public", "fr"),
    ("direction", "private", "fr"),
)

PAST_MESSAGES: tuple[tuple[str, str, str], ...] = (
    ("sales", "sophie", "Nouvel #appeloffres reçu pour Airbus, qui a déjà répondu à un AO dans l'#aéronautique ?"),
    ("sales", "julien", "Attention au #pricing des contrats pluriannuels, voir la grille 2026."),
    ("sales", "chloe", "Merci @thomas pour l'aide sur la #négociation avec Safran !"),
    ("engineering", "thomas", "Migration du cluster #kubernetes terminée, les runbooks sont à jour."),
    ("engineering", "lucas", "Who knows #terraform well enough to review the new modules?"),
    ("engineering", "emma", "Our #python services now run 3.12; thanks @lucas for the upgrade."),
    ("support", "hugo", "Customer asks about #RGPD data retention, any pointer?"),
    ("marketing", "lea", "Lancement de la campagne #SEO la semaine prochaine."),
    ("ideas", "nathan", "Et si on mutualisait les déplacements clients ? #déplacements"),
    ("general", "camille", "Welcome to our new colleagues in Montréal! #onboarding"),
    ("direction", "camille", "Confidentiel : #réorganisation des équipes commerciales au T1."),
)


@dataclass(frozen=True)
class DemoPerson:
    handle: str
    name: str
    title: str
    department: str
    site: str
    tz: str
    languages: str
    skills: tuple[str, ...]


def _handle(first: str) -> str:
    import unicodedata

    plain = "".join(c for c in unicodedata.normalize("NFKD", first) if not unicodedata.combining(c))
    return plain.lower()


def demo_people() -> list[DemoPerson]:
    people: list[DemoPerson] = []
    departments = list(DEPARTMENTS)
    sites = list(SITES)
    for i, first in enumerate(FIRST_NAMES):
        department = departments[i % len(departments)]
        titles, skills = DEPARTMENTS[department]
        site = sites[(i // 2) % len(sites)]
        french = i < 20 or 30 <= i < 50
        chosen = tuple(skills[(i + k * 3) % len(skills)] for k in range(3 + i % 3))
        people.append(
            DemoPerson(
                handle=_handle(first),
                name=f"{first} {LAST_NAMES[i % len(LAST_NAMES)]}",
                title=titles[i % len(titles)],
                department=department,
                site=site,
                tz=SITES[site],
                languages="fr, en" if french else "en",
                skills=tuple(dict.fromkeys(chosen)),
            )
        )
    return people


def channel_members(people: list[DemoPerson]) -> dict[str, list[str]]:
    members: dict[str, list[str]] = {}
    dept_channel = {"Sales": "sales", "Engineering": "engineering", "Marketing": "marketing", "Support": "support"}
    for p in people:
        members.setdefault("general", []).append(p.handle)
        members.setdefault("ideas", []).append(p.handle)
        if p.department in dept_channel:
            members.setdefault(dept_channel[p.department], []).append(p.handle)
    members["direction"] = [DEMO_ADMIN, "sophie", "thomas", "julien"]
    members.setdefault("sales", []).extend(h for h in ("thomas",) if h not in members["sales"])
    members.setdefault("support", []).extend(h for h in ("hugo",) if h not in members["support"])
    return members


def past_message_times(now: datetime) -> list[datetime]:
    return [now - timedelta(days=len(PAST_MESSAGES) - i, hours=3) for i in range(len(PAST_MESSAGES))]
