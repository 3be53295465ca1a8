"""Who and what a person follows, from `store.models.social.Follow` (the social feature's table)."""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from store.models.social import Follow


class StoreFollows:
    def followed(self, session: Session, person_id: int) -> tuple[list[int], list[int]]:
        people: list[int] = []
        topics: list[int] = []
        for followed_person, topic in session.execute(select(Follow.person_id, Follow.topic_id).where(Follow.follower_id == person_id)):
            if followed_person is not None:
                people.append(followed_person)
            if topic is not None:
                topics.append(topic)
        return people, topics
